"""The README's distributed snippet works as written: its two code blocks, saved as the files
they name, run on an embedded Redis with real worker processes."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.timeout(180)


def readme_block(first_line: str) -> str:
    text = (ROOT / "README.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL):
        if block.startswith(first_line + "\n"):
            return str(block)
    raise AssertionError(f"README has no python block starting with {first_line!r}")


def test_readme_distributed_snippet_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "hello_nodes.py").write_text(readme_block("# hello_nodes.py"))
    script = readme_block("# hello_distributed.py")
    (tmp_path / "hello_distributed.py").write_text(script)
    expected = re.search(r"print\(run\.result\(timeout=60\)\.output\)\s+# (.*)", script)
    assert expected is not None
    p = subprocess.run([sys.executable, "hello_distributed.py"], cwd=str(tmp_path),
                       capture_output=True, text=True, timeout=150, check=False)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.strip().splitlines()[-1] == expected.group(1).strip()
    assert "Warning" not in p.stderr, p.stderr
