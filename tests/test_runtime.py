"""The in-process executor: every shared scenario, plus events, cancellation, results, concurrency."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

import flownb
import scenario_nodes  # noqa: F401  (registers the t-* node types)
from flownb.core import events as ev
from scenarios import BUG_SCENARIOS, BY_NAME, SCENARIOS, Scenario, bp, check, n, outcome, register_blueprints


def _params(scenarios: list[Scenario]) -> list[Any]:
    out = []
    for s in scenarios:
        marks = [pytest.mark.xfail(strict=True, reason=s.xfail)] if s.xfail else []
        out.append(pytest.param(s, id=s.name, marks=marks))
    return out


def run_in_thread(blueprint: Any, inputs: Any = None, *, timeout: float = 10.0,
                  **kwargs: Any) -> flownb.RunResult:
    """``flownb.run`` on a helper thread, so a hung run fails the test instead of the suite."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = flownb.run(blueprint, inputs, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - re-raised below
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    assert not t.is_alive(), f"run did not finish within {timeout}s"
    if "error" in box:
        raise box["error"]
    return box["result"]


# -- the shared scenarios ------------------------------------------------------------------------------

def test_scenario_nodes_importable_by_name() -> None:
    """Workers will ``import scenario_nodes``: it must be a top-level module on sys.path."""
    import importlib

    mod = importlib.import_module("scenario_nodes")
    assert mod.__name__ == "scenario_nodes"
    for name in ("t-const", "t-add", "t-route", "t-flaky", "t-sleep", "t-async-sleep", "t-fail",
                 "t-counter", "t-collect", "t-emit", "t-prep-exec-post"):
        assert name in flownb.default_registry
        assert flownb.default_registry.get(name).source == "scenario_nodes"


@pytest.mark.parametrize("scenario", _params(SCENARIOS + BUG_SCENARIOS))
def test_scenario_run(scenario: Scenario) -> None:
    register_blueprints(scenario)
    result = outcome(scenario, lambda: run_in_thread(scenario.blueprint, scenario.inputs))
    check(scenario, result)


ASYNC_SCENARIOS = [s for s in SCENARIOS + BUG_SCENARIOS if not s.leaves_thread]


@pytest.mark.parametrize("scenario", _params(ASYNC_SCENARIOS))
def test_scenario_arun(scenario: Scenario) -> None:
    register_blueprints(scenario)
    result = outcome(scenario, lambda: asyncio.run(
        asyncio.wait_for(flownb.arun(scenario.blueprint, scenario.inputs), 10)))
    check(scenario, result)


def test_scenario_with_own_registry() -> None:
    """A private Registry works the same as the default one (child blueprints included)."""
    reg = flownb.Registry()
    reg.add("t-add", scenario_nodes.t_add)
    reg.add("t-set", scenario_nodes.t_set)
    reg.add("t-const", scenario_nodes.t_const)
    reg.add("t-echo", scenario_nodes.t_echo)
    s = BY_NAME["subflow-input-output-mapping"]
    register_blueprints(s, reg)
    check(s, flownb.run(s.blueprint, s.inputs, registry=reg))
    with pytest.raises(flownb.LintError, match="t-counter"):
        flownb.run(BY_NAME["loop-exits-normally"].blueprint, registry=reg)


def test_the_same_blueprint_object_runs_twice_independently() -> None:
    blueprint = flownb.Blueprint.from_dict(BY_NAME["loop-exits-normally"].blueprint)
    first = flownb.run(blueprint)
    second = flownb.run(blueprint)
    for r in (first, second):
        check(BY_NAME["loop-exits-normally"], r)
    assert first.run_id != second.run_id


# -- events ------------------------------------------------------------------------------------------

def _events(blueprint: Any, inputs: Any = None, **kwargs: Any) -> tuple[flownb.RunResult, list[flownb.Event]]:
    seen: list[flownb.Event] = []
    kwargs.setdefault("raise_on_error", False)
    result = flownb.run(blueprint, inputs, on_event=seen.append, **kwargs)
    return result, seen


def _kinds(events: list[flownb.Event]) -> list[tuple[str, str | None]]:
    return [(e.type, e.node_id) for e in events]


def test_events_order_for_a_small_run() -> None:
    result, seen = _events(bp("ev-small", [n("a", "t-const", value=1), n("b", "t-add", n=1)],
                              [("a", "b")]), run_id="run-ev-1")
    assert result.ok
    assert _kinds(seen) == [
        ("run_started", None),
        ("node_started", "a"), ("node_succeeded", "a"),
        ("node_started", "b"), ("node_succeeded", "b"),
        ("run_finished", None),
    ]
    assert all(e.run_id == "run-ev-1" for e in seen)
    assert seen[0].data["blueprint_id"] == "ev-small"
    done_b = seen[4]
    assert done_b.data["visit"] == 1 and done_b.data["attempt"] == 1
    assert done_b.data["output"] == 2 and done_b.data["duration_s"] >= 0
    assert seen[-1].data["duration_s"] >= 0
    assert [e.ts for e in seen] == sorted(e.ts for e in seen)
    assert {e.type for e in seen} <= ev.ALL_TYPES


def test_node_skipped_event() -> None:
    result, seen = _events(BY_NAME["nested-exclusive-branches"].blueprint)
    assert result.ok
    skipped = [e.node_id for e in seen if e.type == ev.NODE_SKIPPED]
    assert sorted(skipped) == ["A2", "B", "B1"]
    # a node is reported skipped after the node whose choice made it dead
    order = _kinds(seen)
    assert order.index(("node_skipped", "B")) > order.index(("node_succeeded", "start"))
    assert order.index(("node_skipped", "A2")) > order.index(("node_succeeded", "A_route"))
    assert not any(e.type == ev.NODE_STARTED and e.node_id in skipped for e in seen)


def test_custom_events_from_ctx_emit() -> None:
    result, seen = _events(bp("ev-custom", [n("e", "t-emit", count=3)]))
    assert result.ok and result.outputs["e"] == 3
    custom = [e for e in seen if e.type == ev.CUSTOM]
    assert [(e.node_id, e.data["name"], e.data["step"], e.data["of"]) for e in custom] == [
        ("e", "progress", 1, 3), ("e", "progress", 2, 3), ("e", "progress", 3, 3)]
    kinds = _kinds(seen)
    first, last = kinds.index(("custom", "e")), len(kinds) - 1 - kinds[::-1].index(("custom", "e"))
    assert kinds.index(("node_started", "e")) < first and last < kinds.index(("node_succeeded", "e"))


def test_ctx_emit_without_listener_is_harmless() -> None:
    assert flownb.run(bp("ev-quiet", [n("e", "t-emit", count=2)])).outputs["e"] == 2


@pytest.mark.parametrize("config", [{"retries": 2}, {"retries": 2, "timeout_s": 5}],
                         ids=["inline", "general-path"])
def test_retrying_events(config: dict[str, Any]) -> None:
    result, seen = _events(bp("ev-retry", [n("f", "t-flaky", config=config, fail_times=2)]))
    assert result.ok
    retrying = [e for e in seen if e.type == ev.NODE_RETRYING]
    assert [e.data["attempt"] for e in retrying] == [1, 2]
    assert all(e.node_id == "f" for e in retrying)
    assert retrying[0].data["error"] == {"type": "RuntimeError",
                                         "message": "flaky failure on attempt 1"}
    succeeded = [e for e in seen if e.type == ev.NODE_SUCCEEDED]
    assert succeeded[-1].data["attempt"] == 3
    assert "attempt=3" in str(succeeded[-1])


def test_fallback_events() -> None:
    result, seen = _events(BY_NAME["fallback-takes-over-edges"].blueprint)
    assert result.ok
    failed = [e for e in seen if e.type == ev.NODE_FAILED]
    assert len(failed) == 1 and failed[0].node_id == "risky"
    assert failed[0].data["fallback"] == "fb"
    assert failed[0].data["error"]["type"] == "ValueError"
    fb = [e for e in seen if e.type == ev.NODE_FALLBACK]
    assert len(fb) == 1 and fb[0].node_id == "fb" and fb[0].data["replaces"] == "risky"
    assert seen[-1].type == ev.RUN_FINISHED


def test_run_failed_event_is_last() -> None:
    result, seen = _events(BY_NAME["failure-without-fallback"].blueprint)
    assert result.status == "failed"
    assert seen[-1].type == ev.RUN_FAILED and seen[-1].node_id == "b"
    assert seen[-1].data["error"]["type"] == "ValueError"
    assert sum(e.type in ev.TERMINAL for e in seen) == 1


def test_node_failed_event_without_fallback() -> None:
    _, seen = _events(BY_NAME["failure-without-fallback"].blueprint)
    kinds = _kinds(seen)
    assert ("node_failed", "b") in kinds
    assert kinds.index(("node_failed", "b")) < kinds.index(("run_failed", "b"))
    failed = seen[kinds.index(("node_failed", "b"))]
    assert failed.data["attempt"] == 1 and failed.data["error"]["type"] == "ValueError"


def test_failing_subscriber_does_not_break_the_run() -> None:
    def bad(_: flownb.Event) -> None:
        raise RuntimeError("observer bug")

    result = flownb.run(BY_NAME["linear-chain"].blueprint, {"x": 1}, on_event=bad)
    assert result.ok and result.outputs["c"] == 7


def test_on_event_is_unsubscribed_after_the_run() -> None:
    bus = flownb.EventBus()
    seen: list[flownb.Event] = []
    flownb.run(bp("ev-unsub", [n("a", "t-const", value=1)]), bus=bus, on_event=seen.append)
    assert seen and not bus.active


def test_event_fields_round_trip() -> None:
    _, seen = _events(BY_NAME["retry-succeeds-on-third-attempt"].blueprint)
    for e in seen:
        back = flownb.Event.from_fields(e.run_id, e.to_fields(), "1-0")
        assert (back.type, back.node_id, back.run_id) == (e.type, e.node_id, e.run_id)
        assert back.ts == pytest.approx(e.ts)


# -- cancellation -------------------------------------------------------------------------------------

def _cancel_after(blueprint: Any, delay: float, **kwargs: Any) -> tuple[flownb.RunResult, float]:
    token = flownb.CancelToken()
    timer = threading.Timer(delay, token.cancel)
    t0 = time.monotonic()
    timer.start()
    try:
        result = run_in_thread(blueprint, cancel=token, raise_on_error=False, **kwargs)
    finally:
        timer.cancel()
    return result, time.monotonic() - t0


def test_cancel_async_chain_quickly() -> None:
    chain = bp("cancel-async", [n(f"s{i}", "t-async-sleep", seconds=5) for i in range(3)],
               [(f"s{i}", f"s{i + 1}") for i in range(2)])
    result, elapsed = _cancel_after(chain, 0.2)
    assert result.status == "cancelled"
    assert elapsed < 1.5, f"cancel took {elapsed:.2f}s"
    assert result.duration_s < 1.5
    assert "s1" not in result.outputs and "s2" not in result.outputs
    with pytest.raises(flownb.RunCancelled):
        result.raise_for_status()


def test_cancel_sync_chain_between_nodes() -> None:
    chain = bp("cancel-sync", [n(f"s{i}", "t-sleep", seconds=0.2) for i in range(10)],
               [(f"s{i}", f"s{i + 1}") for i in range(9)])
    result, elapsed = _cancel_after(chain, 0.3)
    assert result.status == "cancelled"
    assert elapsed < 1.0
    assert "s9" not in result.outputs


def test_cancel_is_visible_to_a_running_node() -> None:
    result, elapsed = _cancel_after(bp("cancel-aware", [n("w", "t-cancel-aware", seconds=10)]), 0.2)
    assert result.status == "cancelled"
    assert elapsed < 2.0


def test_cancelled_before_start() -> None:
    token = flownb.CancelToken()
    token.cancel()
    seen: list[flownb.Event] = []
    result = flownb.run(BY_NAME["linear-chain"].blueprint, {"x": 1}, cancel=token,
                        on_event=seen.append, raise_on_error=False)
    assert result.status == "cancelled" and not result.outputs
    assert seen[-1].type == ev.RUN_CANCELLED
    with pytest.raises(flownb.RunCancelled) as info:
        flownb.run(BY_NAME["linear-chain"].blueprint, {"x": 1}, cancel=token)  # the default
    assert info.value.result.status == "cancelled" and info.value.run_id


# -- RunResult -----------------------------------------------------------------------------------------

def test_run_result_fields() -> None:
    blueprint = bp("fields", [n("a", "t-sleep", seconds=0.05, value=1), n("b", "t-add", n=1),
                              n("c", "t-add", n=2), n("r", "t-route", action="x"),
                              n("x", "t-echo"), n("y", "t-echo")],
                   [("a", "b"), ("a", "c"), ("a", "r"), ("r", "x", "x"), ("r", "y", "y")])
    before = time.time()
    result = flownb.run(blueprint, {"in": 1}, run_id="fixed-id")
    after = time.time()
    assert result.ok and result.run_id == "fixed-id" and result.blueprint_id == "fields"
    assert before <= result.started_at <= result.finished_at <= after
    assert result.duration_s == pytest.approx(result.finished_at - result.started_at)
    assert result.duration_s >= 0.05
    assert set(result.nodes) == {"a", "b", "c", "r", "x", "y"}
    a = result.nodes["a"]
    assert (a.status, a.visits, a.attempts) == ("succeeded", 1, 1)
    assert a.duration_s >= 0.05
    assert result.nodes["y"].status == "skipped" and result.nodes["y"].visits == 0
    assert set(result.timings) == {"a", "b", "c", "r", "x"}
    assert result.timings["a"] >= 0.05
    assert sorted(result.terminal) == ["b", "c", "x", "y"]
    assert result.output == {"b": 2, "c": 3, "x": 1}
    assert result.state == {"in": 1}
    assert result.error is None
    assert result.raise_for_status() is result
    assert "succeeded" in result.summary() and "fixed-id" in result.summary()
    again = flownb.RunResult.from_dict(result.to_dict())
    assert again.to_dict() == result.to_dict()


def test_run_result_single_terminal_output() -> None:
    result = flownb.run(BY_NAME["linear-chain"].blueprint, {"x": 0})
    assert result.output == 6


def test_raise_for_status_carries_traceback() -> None:
    result = flownb.run(BY_NAME["failure-without-fallback"].blueprint, raise_on_error=False)
    assert not result.ok and result.status == "failed"
    assert result.nodes["b"].status == "failed"
    assert result.nodes["b"].error == "kaboom"
    with pytest.raises(flownb.RunFailed) as info:
        result.raise_for_status()
    err = info.value
    text = str(err)
    assert text.startswith(f"node 'b': run {result.run_id}: failed at attempt 1: ")
    assert "ValueError: kaboom" in text
    assert "--- original traceback ---" in text and "explode_on_purpose" in text
    assert err.node_id == "b" and err.run_id == result.run_id
    assert err.error["type"] == "ValueError" and err.error_type == "ValueError"
    assert "explode_on_purpose" in err.traceback and err.result is result
    assert "b" in repr(result) and "kaboom" in repr(result)


def test_raise_on_error() -> None:
    """Failure is loud by default (run and arun); ``raise_on_error=False`` returns the result."""
    with pytest.raises(flownb.RunFailed, match="flaky_failure"):
        flownb.run(BY_NAME["retries-exhausted"].blueprint)
    with pytest.raises(flownb.RunFailed, match="flaky_failure") as info:
        asyncio.run(flownb.arun(BY_NAME["retries-exhausted"].blueprint))
    assert info.value.node_id and info.value.traceback and info.value.result.status == "failed"
    quiet = flownb.run(BY_NAME["retries-exhausted"].blueprint, raise_on_error=False)
    assert quiet.status == "failed" and quiet.error
    ok = flownb.run(BY_NAME["retry-succeeds-on-third-attempt"].blueprint)
    assert ok.ok


def test_lint_errors_stop_the_run_before_it_starts() -> None:
    seen: list[flownb.Event] = []
    bad = bp("bad", [n("a", "t-cnst"), n("b", "t-echo")], [("a", "b"), ("a", "zzz")])
    with pytest.raises(flownb.LintError) as info:
        flownb.run(bad, on_event=seen.append)
    assert not seen
    codes = sorted(p.code for p in info.value.problems)
    assert codes == ["unknown-target", "unknown-uses"]
    assert "did you mean 't-const'" in str(info.value)


def _statuses_after(name: str, listen: bool) -> dict[str, str]:
    result = flownb.run(BY_NAME[name].blueprint, on_event=(lambda e: None) if listen else None,
                        raise_on_error=False)
    assert result.status == "failed"
    return {k: s.status for k, s in result.nodes.items()}


@pytest.mark.parametrize("listen", [False, True], ids=["quiet", "listened"])
def test_unknown_action_node_is_reported_failed(listen: bool) -> None:
    statuses = _statuses_after("unknown-action-fails-clearly", listen)
    # A and B never ran: the run stopped before them (flownb.core.settle), never "pending"
    assert statuses == {"r": "failed", "A": "cancelled", "B": "cancelled"}


def test_max_visits_node_status_does_not_depend_on_listeners() -> None:
    quiet = _statuses_after("loop-exceeds-max-visits", False)
    listened = _statuses_after("loop-exceeds-max-visits", True)
    assert quiet == listened
    assert "running" not in quiet.values()


@pytest.mark.parametrize("listen", [False, True], ids=["quiet", "listened"])
def test_node_whose_fallback_failed_is_reported_failed(listen: bool) -> None:
    statuses = _statuses_after("fallback-itself-fails", listen)
    assert statuses["fb"] == "failed"
    assert statuses["risky"] == "failed", statuses


def test_node_replaced_by_fallback_is_reported_failed() -> None:
    result, seen = _events(BY_NAME["fallback-takes-over-edges"].blueprint)
    assert result.ok
    assert result.nodes["risky"].status == "failed"
    assert ("node_succeeded", "risky") not in _kinds(seen)


def test_huge_backoff_does_not_crash_the_run() -> None:
    blueprint = bp("backoff", [n("f", "t-fail", config={"retries": 3, "retry_delay_s": 0.001,
                                                       "max_retry_delay_s": 0, "backoff": 1e200})])
    result = flownb.run(blueprint, raise_on_error=False)
    assert result.status == "failed" and result.error["node_id"] == "f"


def test_max_concurrency_bounds_parallel_nodes() -> None:
    blueprint = bp("conc", [n("a", "t-async-sleep", seconds=0.2), n("b", "t-async-sleep", seconds=0.2)])
    t0 = time.monotonic()
    assert flownb.run(blueprint, max_concurrency=1).ok
    assert time.monotonic() - t0 >= 0.38


# -- concurrency and event loops -------------------------------------------------------------------------

@pytest.mark.parametrize("uses", ["t-sleep", "t-async-sleep"])
def test_parallel_branches_run_concurrently(uses: str) -> None:
    blueprint = bp(f"par-{uses}", [n("s", "t-const", value=1), n("a", uses, seconds=0.3),
                                   n("b", uses, seconds=0.3), n("j", "t-collect")],
                   [("s", "a"), ("s", "b"), ("a", "j"), ("b", "j")])
    t0 = time.monotonic()
    result = flownb.run(blueprint)
    elapsed = time.monotonic() - t0
    assert result.ok and result.outputs["j"] == ["a", "b"]
    assert elapsed < 0.5, f"two 0.3 s branches took {elapsed:.3f}s"


def test_run_called_inside_a_running_event_loop() -> None:
    async def main() -> flownb.RunResult:
        asyncio.get_running_loop()  # we really are inside a loop
        return flownb.run(BY_NAME["linear-chain"].blueprint, BY_NAME["linear-chain"].inputs)

    result = asyncio.run(main())
    check(BY_NAME["linear-chain"], result)


def test_arun_runs_concurrently_with_other_tasks() -> None:
    async def main() -> list[flownb.RunResult]:
        one = bp("conc-1", [n("a", "t-async-sleep", seconds=0.3, value=1)])
        two = bp("conc-2", [n("a", "t-async-sleep", seconds=0.3, value=2)])
        return list(await asyncio.gather(flownb.arun(one), flownb.arun(two)))

    t0 = time.monotonic()
    results = asyncio.run(main())
    assert [r.outputs["a"] for r in results] == [1, 2]
    assert time.monotonic() - t0 < 0.55


def test_arun_accepts_json_text_and_blueprint() -> None:
    blueprint = flownb.Blueprint.from_dict(BY_NAME["linear-chain"].blueprint)
    from_text = asyncio.run(flownb.arun(blueprint.to_json(), {"x": 0}))
    from_obj = asyncio.run(flownb.arun(blueprint, {"x": 0}))
    assert from_text.outputs == from_obj.outputs == {"a": 1, "b": 3, "c": 6}


# -- registry ----------------------------------------------------------------------------------------

def test_builder_registers_callables_by_qualified_name() -> None:
    reg = flownb.Registry()
    blueprint = (flownb.Builder("b-callables", registry=reg)
                 .node("a", scenario_nodes.t_const, params={"value": 20})
                 .node("b", scenario_nodes.t_add, params={"n": 1})
                 .chain("a", "b").build())
    assert blueprint.node("a").uses == "scenario_nodes.t_const"
    assert flownb.run(blueprint, registry=reg).outputs["b"] == 21


def test_registry_rejects_unimportable_callables_and_structural_names() -> None:
    reg = flownb.Registry()
    with pytest.raises(flownb.RegistryError, match="no importable name"):
        reg.register_callable(lambda ctx: 1)
    with pytest.raises(flownb.RegistryError, match="built-in"):
        reg.add("map", scenario_nodes.t_const)
    with pytest.raises(flownb.RegistryError, match="did you mean 't-const'"):
        flownb.default_registry.get("t-cnst")


def test_reregistering_a_name_is_picked_up_by_a_cached_graph() -> None:
    reg = flownb.Registry()
    reg.add("t-x", scenario_nodes.t_const)
    blueprint = flownb.Blueprint.from_dict(bp("rereg", [n("a", "t-x", value=5)]))
    assert flownb.run(blueprint, registry=reg).outputs["a"] == 5
    reg.add("t-x", scenario_nodes.t_double)
    assert flownb.run(blueprint, {"z": 1}, registry=reg,
                      raise_on_error=False).status == "failed"  # dict * 2
