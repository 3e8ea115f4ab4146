"""``flownb pause / resume-run / patch-state / retry / skip`` against real workers: what they
print, their exit codes, and the one-line refusals."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from flownb.cli import main
from flownb.distributed.client import DistributedExecutor

from test_run_controls_distributed import chain, counts, wait_for

pytestmark = pytest.mark.timeout(120)


def cli(capsys: Any, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_pause_patch_resume_and_retry_skip(redis_url: str, workers: Any, capsys: Any) -> None:
    workers.modules = ("control_nodes",)
    workers.start(1)
    r = redis.Redis.from_url(redis_url)
    ex = DistributedExecutor(redis_url)
    h = ex.submit(chain(redis_url, n=3, first_seconds=0.8), {"path": []})
    wait_for(lambda: counts(redis_url, 3)[0] == 1)
    code, out, _ = cli(capsys, "pause", h.run_id, "--redis", redis_url, "--json")
    assert code == 0 and json.loads(out)["status"] == "paused"
    wait_for(lambda: r.hexists(f"flownb:run:{h.run_id}:sched", "d:n0:1"))
    code, _, err = cli(capsys, "patch-state", h.run_id, "--redis", redis_url, "--set", "note=oops")
    assert code == 2 and "is not JSON" in err
    code, out, _ = cli(capsys, "patch-state", h.run_id, "--redis", redis_url,
                       "--set", 'note="from the cli"', "--by", "ops")
    assert code == 0 and "patched note" in out
    code, out, _ = cli(capsys, "resume-run", h.run_id, "--redis", redis_url)
    assert code == 0 and "resumed" in out
    assert h.result(30).output["note"] == "from the cli"
    code, _, err = cli(capsys, "pause", h.run_id, "--redis", redis_url)
    assert code == 1 and f"run {h.run_id}: cannot pause: the run is succeeded" in err

    r.set("broken:n1", 1)
    h2 = ex.submit(chain(redis_url, n=3), {"path": []})
    assert h2.result(30, raise_on_error=False).status == "failed"
    code, _, err = cli(capsys, "retry", h2.run_id, "n0", "--redis", redis_url)
    assert code == 1 and "node 'n0'" in err and "that node succeeded" in err
    code, out, _ = cli(capsys, "skip", h2.run_id, "n1", "--redis", redis_url,
                       "--output", '{"path": ["n0", "cli"]}')
    assert code == 0 and "skipped n1" in out
    assert h2.result(30).output["path"] == ["n0", "cli", "n2"]

    r.delete("broken:n1")
    r.set("broken:n2", 1)
    h3 = ex.submit(chain(redis_url, n=3), {"path": []})
    assert h3.result(30, raise_on_error=False).status == "failed"
    r.delete("broken:n2")
    code, _, err = cli(capsys, "retry", h2.run_id, "n2", "--redis", redis_url)
    assert code == 1 and "the run is succeeded" in err
    code, out, _ = cli(capsys, "retry", h3.run_id, "n2", "--redis", redis_url, "--json")
    assert code == 0 and json.loads(out)["node"] == "n2"
    assert h3.result(30).output["path"] == ["n0", "n1", "n2"]
