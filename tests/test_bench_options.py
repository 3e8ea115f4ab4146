"""``python -m bench --workers W --n N``: anyone with a bigger machine can measure (issue 21).

The llm benchmark takes the cluster's worker count and the runs at once from the command line and
reports, beside each row, the CPU per LLM call and the redis-server's CPU; real Redis, real
worker processes, the bench's own LLM server (``--quick``: 50 ms per call, contenders inline).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytest.importorskip("langgraph")
pytest.importorskip("psutil")


def _bench(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bench", *args], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(400)
def test_llm_bench_uses_workers_and_n_and_reports_redis_cpu(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    proc = _bench("--quick", "--only", "llm", "--workers", "1", "--n", "3", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    llm = json.loads(out.read_text())["benchmarks"]["llm"]
    assert llm["data"]["workers"] == 1
    assert list(llm["data"]["cases"]) == ["content_moderation.n3"]
    cluster = llm["data"]["cases"]["content_moderation.n3"]["results"]["cluster"]
    assert cluster["workers"] == 1 and cluster["ok"] == 3
    figs = llm["figures"]
    for key in ("content_moderation.n3.cluster.cpu_ms_per_call",
                "content_moderation.n3.plain.cpu_ms_per_call",
                "content_moderation.n3.cluster.redis_cpu_pct",
                "content_moderation.n3.cluster.calls_per_redis_core_s"):
        v = figs[key]["median"]
        assert isinstance(v, float) and math.isfinite(v) and v > 0, (key, v)
    assert "LocalCluster(1)" in llm["data"]["table"]
    assert "redis-server CPU" in llm["data"]["cpu_table"]


@pytest.mark.parametrize("args, message", [
    (("--n", "0"), "--n must be at least 1, got 0"),
    (("--workers", "-2"), "--workers must be at least 1, got -2"),
    (("--quick", "--write-docs"), "--write-docs publishes a full run: drop --quick/--only"),
    (("--only", "llm", "--write-docs"), "--write-docs publishes a full run: drop --quick/--only"),
])
def test_bad_options_are_refused_before_anything_runs(args: tuple[str, ...], message: str,
                                                      tmp_path: Path) -> None:
    proc = _bench(*args, "--out", str(tmp_path / "r.json"), timeout=60)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "r.json").exists()
