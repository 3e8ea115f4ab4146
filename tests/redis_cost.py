"""Count the Redis commands a piece of work costs, from ``INFO commandstats`` deltas.

``commandstats`` counts the commands a Lua script runs as well as the ones clients send, so the
count is what the server executes — the figure issue 21 is about. A test helper, not a bench:
counts are deterministic (timings are not), so tests can bound them and a regression shows.
Background traffic (worker heartbeats, the reaper, RQ's own loop) is measured while idle and
subtracted, rate times elapsed time, so a bound does not depend on how fast the machine is.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any


def commandstats(r: Any) -> Counter[str]:
    """Calls per command on the whole server (``cmdstat_<name>``), plus ``usec`` in total."""
    out: Counter[str] = Counter()
    for k, v in r.info("commandstats").items():
        if k.startswith("cmdstat_") and isinstance(v, dict):
            name = k[len("cmdstat_"):]
            out[name] += int(v.get("calls", 0))
            out["usec"] += int(v.get("usec", 0))
    return out


def measure(r: Any, work: Callable[[], Any], *, idle_s: float = 1.0) -> tuple[Counter[str], float]:
    """(command deltas of ``work()`` minus idle background traffic, server µs of them)."""
    a = commandstats(r)
    time.sleep(idle_s)
    b = commandstats(r)
    idle_rate = {k: (b[k] - a[k]) / idle_s for k in b if k != "usec"}
    t0 = time.monotonic()
    before = commandstats(r)
    work()
    after = commandstats(r)
    dt = time.monotonic() - t0
    delta: Counter[str] = Counter()
    for k in after:
        if k == "usec":
            continue
        d = after[k] - before[k] - idle_rate.get(k, 0.0) * dt
        if round(d) > 0:
            delta[k] = round(d)
    delta.pop("info", None)  # our own reads
    return delta, float(after["usec"] - before["usec"])


def total(delta: Counter[str]) -> int:
    return sum(v for k, v in delta.items() if k != "usec")
