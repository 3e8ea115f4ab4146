"""What the in-process JSON check costs (issue 17.5): ``flownb.run`` on a chain of 200 nodes
with ``check_json="raise"`` (the default) and ``"off"``, interleaved in one run, for three
output shapes: ``None`` (a no-op), a small record (5 fields, a list of 3 tags) and a ~1 KB list
of 20 such records. Each node also writes one small state key, so state writes are checked too.

``python -m bench.jsoncheck`` prints the table; ``python -m bench --only json_check`` records
the figures with the others.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .common import Config, Report, interleave

RECORD = {"id": 7, "text": "a post about cats", "score": 0.25, "ok": True,
          "tags": ["pets", "cats", "cute"]}
SHAPES: dict[str, Any] = {"none": None, "record": RECORD, "records20": [dict(RECORD, id=i) for i in range(20)]}


def _blueprint(shape: str, n: int) -> tuple[Any, Any]:
    import flownb

    reg = flownb.Registry()
    value = SHAPES[shape]

    def node(ctx: flownb.NodeContext) -> Any:
        ctx.state["last"] = ctx.node_id
        return value

    reg.register("shape", node)
    b = flownb.Builder(f"bench-json-{shape}-{n}")
    for i in range(n):
        b.node(f"n{i}", "shape")
    b.chain(*[f"n{i}" for i in range(n)])
    return b.build(), reg


def _timer(bp: Any, reg: Any, mode: str, n: int) -> Callable[[], float]:
    import flownb

    def t() -> float:
        t0 = time.perf_counter()
        res = flownb.run(bp, registry=reg, check_json=mode)
        dt = time.perf_counter() - t0
        if res.status != "succeeded":
            raise RuntimeError(f"run {res.status}: {res.error}")
        return dt / n * 1e6
    return t


def json_check(cfg: Config) -> Report:
    rep = Report()
    n = cfg.pick(200, 50)
    reps = cfg.pick(15, 3)
    rows = []
    rep.data["n"] = n
    for shape in SHAPES:
        bp, reg = _blueprint(shape, n)
        out = interleave({"off": _timer(bp, reg, "off", n), "raise": _timer(bp, reg, "raise", n)},
                         reps, warmup=2)
        for mode in ("off", "raise"):
            rep.figure(f"{shape}.{mode}.us_per_node", out[mode], "µs/node",
                       f"chain of {n}, output {shape}, check_json={mode!r}")
        extra = [a - b for a, b in zip(out["raise"], out["off"])]
        fig = rep.figure(f"{shape}.extra_us_per_node", extra, "µs/node",
                         f"chain of {n}, output {shape}: cost of the check")
        rows.append((shape, rep.figures[f"{shape}.off.us_per_node"]["median"],
                     rep.figures[f"{shape}.raise.us_per_node"]["median"], fig["median"]))
    rep.data["table"] = rows
    rep.note("Interleaved samples of one run; each node returns the shape and writes one state "
             "key. The check walks exact built-in types and builds no text; only a value it cannot "
             "vouch for is encoded (and then fails or warns as on a worker).")
    return rep


def table(rep: Report) -> str:
    lines = ["| output per node | check_json='off', µs/node | check_json='raise', µs/node | "
             "cost of the check, µs/node |", "|---|---|---|---|"]
    for shape, off, on, extra in rep.data["table"]:
        lines.append(f"| {shape} | {off:.2f} | {on:.2f} | {extra:+.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    print(table(json_check(Config(quick="--quick" in sys.argv))))
