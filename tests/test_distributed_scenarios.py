"""The core scenario suite (tests/scenarios.py), run on the distributed executor.

Same blueprints, same node code (tests/scenario_nodes.py, imported by real worker processes),
same expectations as the in-process run in test_runtime.py: only the executor changes.
"""

from __future__ import annotations

import pytest

import flownb
from flownb.distributed.client import DistributedExecutor

scenarios = pytest.importorskip("scenarios")

pytestmark = pytest.mark.timeout(180)

#: scenarios whose expectations are about in-process details (thread timing, event-loop tricks)
IN_PROCESS_ONLY: set[str] = set(getattr(scenarios, "IN_PROCESS_ONLY", ()))


@pytest.fixture(scope="module")
def executor(module_redis_url: str, module_workers: object) -> DistributedExecutor:
    return DistributedExecutor(module_redis_url)


@pytest.mark.parametrize("scenario", [s for s in scenarios.SCENARIOS if s.name not in IN_PROCESS_ONLY],
                         ids=lambda s: s.name)
def test_scenario_distributed(scenario: object, executor: DistributedExecutor) -> None:
    for extra in getattr(scenario, "extra_blueprints", None) or ():
        bp = extra if isinstance(extra, flownb.Blueprint) else flownb.Blueprint.from_dict(extra)
        flownb.default_registry.add_blueprint(bp)
    blueprint = scenario.blueprint  # type: ignore[attr-defined]
    handle = executor.submit(blueprint, getattr(scenario, "inputs", None) or {})
    result = scenarios.outcome(scenario, lambda: handle.result(timeout=90))
    scenarios.check(scenario, result)
