"""A failing in-process run shows the user's frames, not flownb's and asyncio's (issue 20, defect
10); the full traceback stays available (``RunFailed.traceback``, ``FLOWNB_FULL_TRACEBACK=1``)."""

from __future__ import annotations

import asyncio
import traceback

import pytest

import flownb
from flownb.core.tracebacks import FULL_TRACEBACK_ENV, user_frames


@flownb.node("tb-user-node")
def _user_node(ctx: flownb.NodeContext) -> object:
    return _users_helper(ctx.input)


def _users_helper(x: object) -> object:
    return {"n": 1}["missing"]


BP = flownb.Blueprint.from_dict({"id": "tb", "nodes": [
    {"id": "a", "uses": "noop"}, {"id": "b", "uses": "tb-user-node"}],
    "edges": [{"source": "a", "target": "b"}]})


def _shown(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc))


def _internal_frames(text: str) -> list[str]:
    return [ln for ln in text.splitlines() if ln.startswith('  File "')
            and ("/flownb/" in ln or "/asyncio/" in ln) and "/tests/" not in ln]


def test_run_failed_traceback_starts_at_the_users_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FULL_TRACEBACK_ENV, raising=False)
    with pytest.raises(flownb.RunFailed) as info:
        flownb.run(BP)
    shown = _shown(info.value)
    # the one frame left is the entry point the user called (it re-raises); no engine, no asyncio
    assert [ln.split('"')[1].rsplit("/", 1)[-1] for ln in _internal_frames(shown)] == ["runtime.py"], shown
    assert "in _user_node" in shown and "in _users_helper" in shown and "KeyError: 'missing'" in shown
    assert "FLOWNB_FULL_TRACEBACK=1 shows them" in shown
    assert len(shown.splitlines()) < 25, shown
    # nothing lost: the node's full original traceback is on the exception
    assert "attempt.py" in info.value.traceback and "_users_helper" in info.value.traceback


def test_await_arun_is_trimmed_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(FULL_TRACEBACK_ENV, raising=False)
    with pytest.raises(flownb.RunFailed) as info:
        asyncio.run(flownb.arun(BP))
    # (asyncio.run's own frames are this test's doing: what a notebook's top-level await lacks)
    frames = [f for f in _internal_frames(_shown(info.value)) if "/flownb/" in f]
    assert [f.split('"')[1].rsplit("/", 1)[-1] for f in frames] == ["runtime.py"], frames


def test_full_traceback_on_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FULL_TRACEBACK_ENV, "1")
    with pytest.raises(flownb.RunFailed) as info:
        flownb.run(BP)
    shown = _shown(info.value)
    assert any("aio.py" in f for f in _internal_frames(shown))
    assert "attempt.py" in shown and "hidden" not in shown


def test_user_frames_keeps_a_traceback_with_no_user_frame() -> None:
    text = ('Traceback (most recent call last):\n  File "/x/flownb/engine/builtins.py", line 83, in fail\n'
            '    raise RuntimeError("no")\nRuntimeError: no')
    assert user_frames(text) == text  # a built-in node failed: its frames are all there is
