"""Small promises the docs make: token chunks' visit, the batch snapshot and retry, the idle
worker line, the API reference, the HITL page's notebook link, the CLI's exit-code list."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT, Workers
from test_cli import NO_REDIS_ENV, cli

import flownb
from flownb.engine.batch import NothingToRetryWarning
from flownb.distributed.client import DistributedExecutor

STREAMING = {"id": "tokens-visit", "nodes": [
    {"id": "llm", "uses": "llm-process", "params": {"prompt": "Summarise: {{topic}}",
                                                    "stream": True}}]}


def test_token_chunks_carry_their_visit_on_both_executors(redis_url: str,
                                                          workers: Workers) -> None:
    local = [c for c in flownb.stream(STREAMING, {"topic": "streams"}, mode="tokens")]
    assert local and all(c.node == "llm" and c.visit == 1 for c in local)
    workers.start(1)
    handle = DistributedExecutor(redis_url).submit(STREAMING, {"topic": "streams"})
    remote = [c for c in handle.stream("tokens")]
    assert remote and all(c.node == "llm" and c.visit == 1 for c in remote)
    assert "".join(c.data for c in remote) == "".join(c.data for c in local)


SLOW = {"id": "batch-slow", "nodes": [{"id": "nap", "uses": "sleep", "params": {"seconds": 0.4}}]}


def test_to_pandas_is_a_snapshot_and_wait_true_waits() -> None:
    pytest.importorskip("pandas")
    batch = flownb.run_many(SLOW, [{"i": i} for i in range(4)], concurrency=2)
    early = batch.to_pandas()
    assert set(early["status"]) & {"pending", "running"}  # rows not done yet, said so
    assert "snapshot" in (flownb.Batch.to_pandas.__doc__ or "")
    final = batch.to_pandas(wait=True)
    assert list(final["status"]) == ["succeeded"] * 4
    assert list(early["status"]) != list(final["status"])  # the early frame did not change
    slow = flownb.run_many(SLOW, [{"i": 0}])
    with pytest.raises(flownb.RunTimeout, match="to_pandas"):
        slow.to_pandas(wait=True, timeout=0.01)
    slow.wait()


def test_retry_failed_with_nothing_to_retry_says_so() -> None:
    batch = flownb.run_many(SLOW, [{"i": 0}, {"i": 1}])
    batch.wait()
    before = batch.results()
    with pytest.warns(NothingToRetryWarning, match=r"nothing to retry.*2 succeeded"):
        again = batch.retry_failed()
    assert again is batch and batch.results() == before  # unchanged, no pass started
    fail = {"id": "batch-fail", "nodes": [{"id": "f", "uses": "fail"}]}
    failing = flownb.run_many(fail, [{"i": 0}])
    failing.wait()
    with warnings.catch_warnings():
        warnings.simplefilter("error", NothingToRetryWarning)  # something to retry: no warning
        failing.retry_failed().wait()


def test_an_idle_worker_is_not_shown_running(redis_url: str, workers: Workers) -> None:
    workers.start(1)
    ex = DistributedExecutor(redis_url)
    res = ex.run({"id": "idle-then", "nodes": [{"id": "only", "uses": "passthrough"}]}, {},
                 timeout=60)
    deadline = time.monotonic() + 15
    while True:  # the heartbeat after the visit ended
        doc = json.loads(cli("workers", "--json", "--redis", redis_url).stdout)
        [w] = doc["workers"]
        if w["state"] == "idle" and w.get("last"):
            break
        assert time.monotonic() < deadline, w
        time.sleep(0.2)
    assert w["current"] is None and w["last"] == f"{res.run_id}:only"
    text = cli("workers", "--redis", redis_url).stdout
    line = next(ln for ln in text.splitlines() if w["name"] in ln)
    assert " idle " in line and "running" not in line and f"last ran {res.run_id}:only" in line


# -- the docs ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    pytest.importorskip("mkdocs")
    out = tmp_path_factory.mktemp("site")
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir",
                    str(out)], cwd=ROOT, check=True, capture_output=True, timeout=300,
                   env={**NO_REDIS_ENV, "NO_MKDOCS_2_WARNING": "1"})
    yield out


def test_every_public_name_is_in_the_api_reference(site: Path) -> None:
    html = "".join(p.read_text() for p in (site / "api").glob("*/index.html"))
    prose = "".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    missing = [name for name in flownb.__all__
               if f'id="flownb.{name}"' not in html and f'id="flownb.core.errors.{name}"' not in html
               and not re.search(rf"`flownb\.{re.escape(name)}`", prose)]
    assert not missing, f"names of flownb.__all__ not in docs/api: {missing}"
    for member in ("Builder.edge", "Builder.build"):
        assert f'id="flownb.{member}"' in html, member


def test_the_hitl_pages_notebook_link_resolves(site: Path) -> None:
    page = (site / "hitl" / "index.html").read_text()
    [href] = re.findall(r'href="([^"]*07_human_in_the_loop\.ipynb)"', page)
    target = (site / "hitl" / href).resolve()
    assert target.is_file(), href
    assert target.read_bytes() == (ROOT / "notebooks" / "07_human_in_the_loop.ipynb").read_bytes()
    source = (ROOT / "docs" / "hitl.md").read_text()  # still right when read on the repository
    assert "](../notebooks/07_human_in_the_loop.ipynb)" in source


def test_cli_exit_codes_are_documented() -> None:
    from flownb.cli import EXIT_INTERRUPTED, EXIT_TIMEOUT
    from flownb.cli.stdio import EXIT_BROKEN_PIPE
    from flownb.cli.resume import EXIT_WAITING

    doc = (ROOT / "docs" / "cli.md").read_text()
    for code in (0, 1, 2, EXIT_WAITING, EXIT_TIMEOUT, EXIT_INTERRUPTED, EXIT_BROKEN_PIPE):
        assert f"**{code}**" in doc, code
    assert EXIT_TIMEOUT == 124 and "--timeout-s" in doc
