"""What OpenTelemetry tracing costs per node, in process: off, on without a configured SDK, on
with the SDK — side by side in one run (issue 22: zero cost when tracing is off).

"off" is the default (``flownb.core.tracing.TRACER is None``: one global read per run and per
ready visit; opentelemetry is not imported). "on, API only" is ``flownb.otel.enable()`` with no
SDK provider set (OpenTelemetry hands out non-recording spans). "on, SDK" records every span
with the SDK's ``TracerProvider`` and a ``BatchSpanProcessor`` into an in-memory exporter (what an
OTLP exporter costs on top is network and the collector, off the run's thread). With tracing on,
each visit takes the policy's general path (its span must cover the attempts), not the inline
fast path. Samples of the three are interleaved, so a noisy machine hits all of them alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .common import Config, Report, chain_bp, interleave, paired_ratio


def _contender(bp: Any, n: int, setup: Callable[[], None]) -> Callable[[], float]:
    import flownb

    def go() -> float:
        setup()
        t0 = time.perf_counter()
        res = flownb.run(bp, {})
        dt = time.perf_counter() - t0
        if res.status != "succeeded":
            raise RuntimeError(f"flownb run {res.status}: {res.error}")
        return dt / n

    return go


def tracing(cfg: Config) -> Report:
    import flownb.otel
    from flownb.core import tracing as hooks

    rep = Report()
    try:
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    except ImportError:
        rep.status = "not_available"
        rep.note("needs opentelemetry-sdk (pip install 'flownb[dev]')")
        return rep
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=65536,
                                                   schedule_delay_millis=200))
    api_only = flownb.otel.OtelTracer()  # the global provider: none configured here -> no-op spans
    sdk = flownb.otel.OtelTracer(provider)

    def off() -> None:
        hooks.install(None)

    def on_api() -> None:
        hooks.install(api_only)

    def on_sdk() -> None:
        exporter.clear()
        hooks.install(sdk)

    n = cfg.pick(200, 50)
    reps = cfg.pick(15, 3)
    bp = chain_bp(n, bp_id=f"bench-trace-{n}")
    try:
        out = interleave({"off": _contender(bp, n, off), "api": _contender(bp, n, on_api),
                          "sdk": _contender(bp, n, on_sdk)}, reps, warmup=2)
    finally:
        hooks.install(None)
        provider.shutdown()
    us = {k: [x * 1e6 for x in v] for k, v in out.items()}
    labels = {"off": "tracing off (default)", "api": "flownb.otel.enable(), no SDK configured",
              "sdk": "flownb.otel.enable() + SDK, batch processor, in-memory exporter"}
    for k, v in us.items():
        rep.figure(f"{k}.n{n}.us_per_node", v, "µs/node", f"{labels[k]}, chain of {n}")
    paired_ratio(rep, f"ratio.n{n}.sdk_over_off", us["sdk"], us["off"], f"SDK tracing / off, chain {n}")
    rep.goal(f"tracing off: chain {n} ≤ 3 µs/node", f"off.n{n}.us_per_node", "<=", 3.0)
    rep.note("Off is the number every other in-process figure is taken with; each 'on' visit "
             "opens a node span (and the run a run span) and leaves the inline fast path.")
    return rep
