"""A distributed batch counts each event of a child run (subflow, map) once.

The batch's watcher follows the rows' streams and their child runs' streams. When a row's
terminal event settles it, the watcher drains what is left of the row's child runs; the same
wake-up's reply (or a later chunk of it, read from the older id) may carry those child entries
again. They were counted twice: ``snapshot().llm_calls`` said 35 LLM calls where 34 ran (the
"LLM node runs twice" flake of test_batch_distributed; the LLM server counted 850 calls where
the batch said 854 in the LLM bench).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import Workers

import flownb

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def two_workers(redis_url: str) -> Iterator[Workers]:
    w = Workers(redis_url)
    w.start(2)
    yield w
    w.close()


def test_child_run_events_are_counted_once_when_read_twice(
        redis_url: str, two_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    from flownb import examples
    from flownb.distributed import DistributedExecutor
    from flownb.distributed import batch as dbatch

    # every stream its own XREAD: a child's chunk is read after its row's chunk in the same
    # wake-up, from the id captured before the row settled (the order a large batch has)
    monkeypatch.setattr(dbatch, "STREAMS_PER_READ", 1)
    bp = examples.load("content_moderation")
    cases = list(examples.cases("content_moderation").values())
    rows = cases * 8
    batch = DistributedExecutor(redis_url).map(bp, rows)
    results = batch.results(timeout=90)
    assert all(r.ok for r in results), [r.error for r in results]
    local = flownb.run_many(bp, rows)
    local.results(timeout=60)
    snap, want = batch.snapshot(), local.snapshot()
    # 3 checks + triage per run, + the redact subflow's own LLM call (a child run) (2 of the 8 cases)
    assert want.llm_calls == 4 * len(rows) + len(rows) // 4
    assert snap.llm_calls == want.llm_calls
    assert snap.total_tokens == want.total_tokens
    assert "redact_text" in {n.node_id for n in snap.nodes}


def test_a_row_the_sweep_finds_ended_still_counts_its_last_events(
        redis_url: str, two_workers: Workers, monkeypatch: pytest.MonkeyPatch) -> None:
    """The status sweep settles a row whose run ended before the watcher read its stream to the
    end (it lags under load): the events it had not read yet are counted all the same."""
    from flownb import examples
    from flownb.distributed import DistributedExecutor
    from flownb.distributed import batch as dbatch

    monkeypatch.setattr(dbatch, "SWEEP_S", 0.0)  # a sweep every wake-up: the lag is the rule
    monkeypatch.setattr(dbatch, "STREAMS_PER_READ", 1)
    bp = examples.load("content_moderation")
    rows = list(examples.cases("content_moderation").values()) * 8
    batch = DistributedExecutor(redis_url).map(bp, rows)
    results = batch.results(timeout=90)
    assert all(r.ok for r in results), [r.error for r in results]
    snap = batch.snapshot()
    assert snap.llm_calls == 4 * len(rows) + len(rows) // 4
    assert sum(n.count for n in snap.nodes if n.node_id == "triage") == len(rows)
