"""The README's and the guide's Python snippets run as written (issue 17.8): every ```python block
of README.md and docs/*.md, in a fresh interpreter per file, blocks in order in one namespace
(as a reader goes down the page), with the results shown in ``# comments`` checked. Files whose
snippets talk to Redis get an embedded Redis as ``FLOWNB_REDIS_URL`` and two real workers
importing the node modules the page saves. See tests/snippet_runner.py for the rules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import snippet_runner
from conftest import ROOT, TESTS_DIR, Workers

from flownb.examples import flowcraft_dir

PAGES = [p for p in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
         if snippet_runner.python_blocks(p)]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(ROOT).as_posix() for p in PAGES])
def test_python_snippets_run_as_written(page: Path, tmp_path: Path, redis_url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS_DIR)])}
    # the README's Flowcraft section loads "data/", a folder of Flowcraft files: the repository's
    # copy of the agents in that layout stands in for the reader's own
    (tmp_path / "data").symlink_to(flowcraft_dir(), target_is_directory=True)
    workers = None
    if snippet_runner.needs_redis(page):
        snippet_runner.save_files(page, tmp_path)  # the workers import the page's node modules
        workers = Workers(redis_url, modules=tuple(snippet_runner.node_modules(page)),
                          args=("--path", str(tmp_path)))
        workers.start(2)
        env["FLOWNB_REDIS_URL"] = redis_url
    try:
        p = subprocess.run([sys.executable, str(TESTS_DIR / "snippet_runner.py"), str(page)],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=200,
                           check=False)
    finally:
        if workers is not None:
            workers.close()
    assert p.returncode == 0, p.stderr[-4000:]
    ran = p.stderr.count("[snippet] ran ")
    skipped = p.stderr.count("[snippet] skipped ")
    assert ran + skipped == len(snippet_runner.python_blocks(page)), p.stderr
    assert skipped <= 1, f"more than one block of {page.name} skipped: {p.stderr}"


def test_the_runner_checks_shown_results_and_skips_only_marked_blocks(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "```python", "x = 1 + 1", "x                # 2", "print('x')   # not a literal", "```",
        "<!-- skip-snippet: needs a real key -->", "```python", "raise SystemExit(9)", "```",
        "```python", "# saved.py", "VALUE = 'saved'", "```",
        "```python", "import saved", "saved.VALUE     # 'saved'",
        "await __import__('asyncio').sleep(0)", "x                # 3", "```", ""]))
    p = subprocess.run([sys.executable, str(TESTS_DIR / "snippet_runner.py"), str(page)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 1
    assert "[snippet] skipped page.md block 2 (line 7): needs a real key" in p.stderr
    assert "[snippet] ran page.md block 3" in p.stderr
    assert "page.md block 4 (line 14), line 4: x: the docs say 3, the code gives 2" in p.stderr
    assert (tmp_path / "saved.py").read_text() == "# saved.py\nVALUE = 'saved'\n"
