"""The four example agents run to their final output on every branch, in process and distributed."""

from __future__ import annotations

import pytest

import flownb
from flownb import examples
from flownb.distributed.client import DistributedExecutor

#: (example, input case) -> the branch node that must run, and the final node
EXPECTED = {
    ("blog_post", "default"): ("titles", "final"),
    ("job_application", "qualified"): ("invite", "final_output"),
    ("job_application", "rejected"): ("reject", "final_output"),
    ("customer_review", "positive"): ("thank_you", "final_step"),
    ("customer_review", "negative"): ("handle_complaint", "final_step"),
    ("content_moderation", "approve"): ("approve", "final_log"),
    ("content_moderation", "redact"): ("redact", "final_log"),
    ("content_moderation", "delete-spam"): ("delete-spam", "final_log"),
    ("content_moderation", "ban"): ("ban", "final_log"),
}
CASES = sorted(EXPECTED)


def test_every_input_case_is_covered() -> None:
    listed = {(n, c) for n in examples.EXAMPLES for c in examples.cases(n)}
    assert listed == set(EXPECTED)


def check(name: str, case: str, res: flownb.RunResult) -> None:
    branch, final = EXPECTED[(name, case)]
    assert res.status == "succeeded", res.error
    ran = {n for n, s in res.nodes.items() if s.status == "succeeded"}
    assert branch in ran and final in ran, ran
    bp = examples.load(name)
    others = {e.target for e in bp.edges if e.action} - {branch}
    assert not (others & ran), f"branches not chosen must not run: {others & ran}"
    assert res.outputs[final], "the final node produced its output"


@pytest.mark.parametrize("name,case", CASES)
def test_example_in_process(name: str, case: str) -> None:
    check(name, case, flownb.run(examples.load(name), examples.inputs(name, case)))


@pytest.mark.timeout(180)
@pytest.mark.parametrize("name,case", CASES)
def test_example_distributed(name: str, case: str, module_redis_url: str, module_workers: object) -> None:
    ex = DistributedExecutor(module_redis_url)
    res = ex.submit(examples.load(name), examples.inputs(name, case)).result(timeout=90)
    check(name, case, res)


def test_examples_lint_clean() -> None:
    for name in examples.EXAMPLES:
        problems = examples.load(name).lint(flownb.default_registry)
        assert [p for p in problems if p.severity == "error"] == []
