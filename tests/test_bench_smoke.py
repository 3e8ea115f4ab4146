"""Smoke test of the benchmark suite: ``python -m bench --quick`` runs every benchmark end to end
(real Redis, real worker subprocesses) and writes a JSON with numbers for each of them.

No timing assertions: these machines are noisy and the figures are for people to read.
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
pytest.importorskip("pocketflow")
pytest.importorskip("psutil")


def _numeric(x: object) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(float(x))


@pytest.mark.timeout(600)
def test_bench_quick_writes_every_benchmark_with_numbers(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=540)
    assert out.exists(), f"no JSON written (rc={proc.returncode}):\n{proc.stderr[-3000:]}"
    res = json.loads(out.read_text())

    sys.path.insert(0, str(ROOT))
    from bench.__main__ import BENCHMARKS

    machine = res["machine"]
    assert machine["cpu_count"] and machine["python"]
    for dist in ("flownb", "rq", "redis-py", "redis-server", "langgraph", "pocketflow"):
        assert machine["versions"][dist], dist

    benches = res["benchmarks"]
    assert set(benches) == {b.name for b in BENCHMARKS}
    for name, b in benches.items():
        assert b["status"] != "error", f"{name} failed:\n{b.get('error')}"
        assert b["status"] in ("ok", "not_available"), (name, b["status"])
        figs = b["figures"]
        assert figs, f"{name} has no figures"
        for key, f in figs.items():
            for stat in ("min", "median", "max"):
                assert _numeric(f[stat]), (name, key, stat, f[stat])
            assert f["min"] <= f["median"] <= f["max"], (name, key)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "| Benchmark | flownb |" in proc.stdout  # the compact table for the README
