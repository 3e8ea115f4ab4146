"""Each Lua script carries only the prelude helpers it uses (issue 21: redis-server CPU per node).

A script that lacks a helper would fail only when the line calling it runs — perhaps on a rare
path (a reducer, a loop exit, a broken graph) — so these tests prove statically that no script
uses a name it declares nowhere, that the check catches a planted mistake, and that every
script compiles on the real Redis.
"""

from __future__ import annotations

import hashlib
import re

import pytest
import redis

from flownb.distributed.scripts import ALL, RATE_LIMIT, _LIB
from flownb.distributed.scripts.assemble import free_names, split_blocks, with_prelude
from flownb.distributed.scripts.controls import CONTROLS
from flownb.distributed.scripts.listing import LIST_RUNS
from flownb.distributed.scripts.run import _COMMIT_BODY

EVERY = {**ALL, **CONTROLS, "LIST_RUNS": LIST_RUNS, "RATE_LIMIT": RATE_LIMIT}


def test_every_script_declares_every_name_it_uses() -> None:
    missing = {name: sorted(free_names(src)) for name, src in EVERY.items() if free_names(src)}
    assert missing == {}


def test_a_helper_left_out_or_misspelt_is_caught() -> None:
    # the prelude without fire(): COMMIT's body routes through it
    blocks = split_blocks(_LIB)
    assert any(b.defines == {"fire"} for b in blocks)
    no_fire = "".join(b.text for b in blocks if "fire" not in b.defines)
    assert "fire" in free_names(with_prelude(_COMMIT_BODY, no_fire))
    # a misspelt helper in a body (only a rare path would have raised at run time)
    body = "if ARGV[7] == 'x' then return finalise('failed', nil, 'run_failed') end\nreturn 1\n"
    assert free_names(with_prelude(body)) == {"finalise"}
    # a global written by mistake, and a name that only appears in a string or comment
    assert free_names(with_prelude("total = 1\nreturn total\n")) == {"total"}
    assert free_names(with_prelude("-- fire(x)\nreturn 'drain(y)'\n")) == set()


def test_the_prelude_splits_into_statements_and_each_script_keeps_what_it_uses() -> None:
    blocks = split_blocks(_LIB)
    assert "".join(b.text for b in blocks) == _LIB
    # a claim neither routes nor ends a run: no join algorithm, no reducers, no finalisation
    for name in ("CLAIM", "CLAIM_MANY"):
        for helper in ("drain", "reduce_text", "finalize", "queue_ready"):
            assert f"local function {helper}(" not in ALL[name], (name, helper)
        assert "local function claim_one(" in ALL[name]
    # COMMIT routes and may end the run; it never claims through claim_one or checks a pending item
    assert "local function drain(" in ALL["COMMIT"] and "local function claim_one(" not in ALL["COMMIT"]
    assert "local function pending_item(" not in ALL["COMMIT"]
    # ... and ends a run rarely: the end of a run is made on first use, as a field of C
    assert "function C.finalize(" in ALL["COMMIT"] and "local function finalize(" not in ALL["COMMIT"]
    assert "C.finalize('succeeded'" in ALL["COMMIT"] and "C.reduce_text(" in ALL["COMMIT"]
    # a body that reads no clock does not call TIME; helpers come in the prelude's order
    assert "'TIME'" not in with_prelude("return KEYS[1] ~= nil and K_META or ''\n")
    fin = with_prelude("return finalize('succeeded', nil, 'run_finished')\n")
    assert fin.index("function C.release_blueprints(") < fin.index("function C.finalize(")
    assert "local function drain(" not in fin
    assert "local C" not in with_prelude("return xadd(K_EVENTS, 'x', '', '{}')\n")


def test_a_cold_helper_named_again_is_refused() -> None:
    # a local of the body named like a cold helper would be rewritten into a field of C
    with pytest.raises(ValueError, match="finalize"):
        with_prelude("local finalize = 1\nreturn fail_broken('n', 'why')\n")


def test_every_script_compiles_on_redis(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    for name, src in EVERY.items():
        sha = r.script_load(src)
        assert sha == hashlib.sha1(src.encode()).hexdigest(), name


def test_the_run_status_is_only_changed_with_its_copy_for_commit() -> None:
    # COMMIT reads the run's status and pause flag from the sched hash ('st', 'pz'): a script that
    # changed the meta's alone would let a commit through on a cancelled, finished or paused run
    status_write = re.compile(r"'HSET',\s*[\w(), ']*?'status'")
    for name, src in EVERY.items():
        body = src.replace(src[src.find("function C.set_status("):src.find("\nend\n", src.find(
            "function C.set_status("))] if "function C.set_status(" in src else "", "")
        assert not status_write.search(body), name
        for line in body.splitlines():
            if re.search(r"'(HSET|HDEL)',\s*K_META,\s*'(paused|finished_at)'", line) and "'paused'" in line:
                i = body.index(line)
                assert "K_SCHED, 'pz'" in body[i:i + 300], (name, line)
    assert status_write.search("redis.call('HSET', K_META, 'status', 'cancelled')")  # the check bites
