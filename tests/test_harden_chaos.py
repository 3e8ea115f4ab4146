"""Issue 19, medium item: the chaos check of ``python -m bench --quick`` kills workers for real,
and fails (an error, exit status 1) when it killed too few to prove anything."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(300)


def test_quick_chaos_kills_workers_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "chaos.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--only", "chaos",
                           "--out", str(out)], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=280)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads(out.read_text())["benchmarks"]["chaos"]
    figs = {k: v["median"] for k, v in res["figures"].items()}
    assert figs["kills"] >= 2 and figs["lost"] == 0 and figs["double_commits"] == 0, figs
    assert all(g["ok"] for g in res["goals"]), res["goals"]


def test_a_chaos_run_that_killed_nobody_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    sys.path.insert(0, str(ROOT))
    from bench import reliability
    from bench.common import Config

    class Patient(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return 1000.0  # the killer never gets to kill

    monkeypatch.setattr(reliability.random, "Random", Patient)
    with pytest.raises(AssertionError, match=r"only 0 worker\(s\) killed"):
        reliability.chaos(Config(quick=True))
