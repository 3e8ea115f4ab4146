"""Streaming a run: chunks as it goes, in the spirit of LangGraph's stream modes.

=========  ===============================================================================
mode       one chunk per …
=========  ===============================================================================
updates    committed node visit: ``data = {"output", "action", "writes"}`` (writes = state diff)
values     committed node visit: ``data = {"state", "outputs"}``, the whole state after it
events     flownb event: ``data`` is the :class:`~flownb.core.events.Event`
tokens     piece of LLM text as it arrives: ``data`` is the text (LLM nodes with ``stream``)
=========  ===============================================================================

``mode`` may be a list; every chunk says its ``mode``, ``node`` and ``visit``. A stream ends when
the run ends *or waits* for a person (its ``result`` then says ``waiting``). Each piece of LLM
text comes once: with ``tokens`` among the modes it is a ``tokens`` chunk only, not also an
``events`` chunk of its ``llm_token`` event (which made ``["tokens", "events"]`` repeat it).

One chunker for both executors: it turns the run's events, each ``node_succeeded`` paired with
its committed :class:`~flownb.engine.history.Step`, into chunks. In process the pairs come from the
engine's event bus and history recorder; on Redis from the run's event stream and the history
stream the ``COMMIT`` script writes in the same call (see ``RunHandle.stream``) — so the same
blueprint gives the same chunks on both, and a late subscriber of a distributed run replays
from the first event.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..core import events as ev
from ..core.errors import FlownbError
from ..core.events import Event
from .history import Recorder, Step

if TYPE_CHECKING:
    from ..core.result import RunResult

MODES = ("updates", "values", "events", "tokens")
#: the custom event LLM nodes emit per piece of streamed text (flownb.llm.runner.TOKEN_EVENT)
TOKEN_EVENT = "llm_token"


@dataclass(frozen=True)
class Chunk:
    mode: str
    node: str | None
    visit: int | None
    data: Any

    def __repr__(self) -> str:
        where = f" {self.node}#{self.visit}" if self.visit is not None else (
            f" {self.node}" if self.node else "")
        data = self.data.type if isinstance(self.data, Event) else self.data
        return f"<Chunk {self.mode}{where} {data!r:.80}>"


def parse_modes(mode: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    modes = (mode,) if isinstance(mode, str) else tuple(mode)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise FlownbError(f"unknown stream mode(s) {bad or modes!r}; use one or a list of {MODES}")
    return modes


class Chunker:
    """(event, step) pairs in commit order → chunks; keeps the running state for ``values``."""

    def __init__(self, modes: tuple[str, ...], inputs: Mapping[str, Any]) -> None:
        self.modes = modes
        self.state: dict[str, Any] = dict(inputs)
        self.outputs: dict[str, Any] = {}
        #: the ``tokens`` mode carries the text: ``events`` leaves the token events out
        self.tokens_apart = "tokens" in modes

    def feed(self, event: Event, step: Step | None) -> list[Chunk]:
        if step is not None:
            step.apply(self.state, self.outputs)
        out: list[Chunk] = []
        for m in self.modes:
            if m == "events":
                if not (self.tokens_apart and _is_token(event)):
                    out.append(Chunk(m, event.node_id, event.data.get("visit"), event))
            elif m == "tokens":
                if _is_token(event):
                    out.append(Chunk(m, event.node_id, event.data.get("visit"),
                                     event.data.get("text", "")))
            elif step is not None and m == "updates":
                out.append(Chunk(m, step.node, step.visit, {"output": step.output,
                                                           "action": step.action,
                                                           "writes": dict(step.writes)}))
            elif step is not None and m == "values":
                out.append(Chunk(m, step.node, step.visit, {"state": dict(self.state),
                                                           "outputs": dict(self.outputs)}))
        return out


def _is_token(event: Event) -> bool:
    return event.type == ev.CUSTOM and event.data.get("name") == TOKEN_EVENT


def ends_stream(event: Event) -> bool:
    return event.type in ev.TERMINAL or event.type == ev.RUN_WAITING


class AsyncRunStream:
    """``async for chunk in flownb.astream(...)``; ``.result`` once it is exhausted."""

    def __init__(self, blueprint: Any, inputs: Mapping[str, Any] | None, modes: tuple[str, ...],
                 kwargs: dict[str, Any]) -> None:
        from .runtime import CancelToken

        self.blueprint = blueprint
        self.inputs = dict(inputs or {})
        self.modes = modes
        self.kwargs = kwargs
        self.cancel = kwargs.pop("cancel", None) or CancelToken()
        kwargs.pop("history", None)  # a stream always records (its updates/values come from it)
        self.result: RunResult | None = None

    def __aiter__(self) -> AsyncIterator[Chunk]:
        return self._chunks()

    def __repr__(self) -> str:
        """What a notebook shows for a stream left as a cell's last line: what it streams and
        how far it got, not ``<object at 0x…>``."""
        bp = getattr(self.blueprint, "id", None) or "blueprint"
        state = "not finished" if self.result is None else f"ended: {self.result.status}"
        return (f"<flownb stream of {bp!r}, modes {list(self.modes)}, {state} "
                f"(iterate it: for chunk in stream)>")

    async def _chunks(self) -> AsyncIterator[Chunk]:
        from .runtime import arun

        loop = asyncio.get_running_loop()
        q: asyncio.Queue[tuple[Event, Step | None] | None] = asyncio.Queue()
        rec = Recorder(self.inputs)
        user_cb = self.kwargs.pop("on_event", None)

        def on_event(e: Event) -> None:
            step = rec.last if e.type == ev.NODE_SUCCEEDED else None
            loop.call_soon_threadsafe(q.put_nowait, (e, step))  # nodes may emit from threads
            if user_cb is not None:
                user_cb(e)

        task = asyncio.ensure_future(arun(self.blueprint, self.inputs, on_event=on_event,
                                          history=rec, cancel=self.cancel, **self.kwargs))
        task.add_done_callback(lambda _: loop.call_soon_threadsafe(q.put_nowait, None))
        chunker = Chunker(self.modes, self.inputs)
        try:
            while True:
                pair = await q.get()
                if pair is None:
                    break
                for c in chunker.feed(*pair):
                    yield c
            self.result = task.result()
        finally:
            if not task.done():  # the consumer stopped early: stop the run too
                self.cancel.cancel()
                await asyncio.gather(task, return_exceptions=True)


class RunStream:
    """``for chunk in flownb.stream(...)``: the async stream pumped on a helper thread (so it
    works inside Jupyter's running loop too); ``.result`` once it is exhausted."""

    _END = object()

    def __init__(self, inner: AsyncRunStream) -> None:
        self.inner = inner

    @property
    def result(self) -> RunResult | None:
        return self.inner.result

    def __repr__(self) -> str:
        return repr(self.inner)

    def __iter__(self) -> Iterator[Chunk]:
        q: queue.Queue[Any] = queue.Queue(maxsize=1000)
        stop = threading.Event()

        async def pump() -> None:
            try:
                async for c in self.inner:
                    q.put(c)
                    if stop.is_set():
                        break
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                q.put(_Raised(exc))
            finally:
                q.put(self._END)

        t = threading.Thread(target=lambda: asyncio.run(pump()), name="flownb-stream", daemon=True)
        t.start()
        ended = False
        try:
            while True:
                x = q.get()
                if x is self._END:
                    ended = True
                    break
                if isinstance(x, _Raised):
                    raise x.exc
                yield x
        finally:
            if ended:
                t.join()
            else:  # the consumer stopped early: stop the run and let the pump finish
                stop.set()
                self.inner.cancel.cancel()
                while t.is_alive():  # drain so the pump can finish
                    try:
                        q.get(timeout=0.05)
                    except queue.Empty:
                        pass
                t.join()


class _Raised:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def astream(blueprint: Any, inputs: Mapping[str, Any] | None = None, *,
            mode: str | list[str] = "updates", **kwargs: Any) -> AsyncRunStream:
    """Run in process and stream chunks: ``async for chunk in flownb.astream(bp, inputs)``.
    Other keyword arguments go to :func:`flownb.arun`."""
    return AsyncRunStream(blueprint, inputs, parse_modes(mode), kwargs)


def stream(blueprint: Any, inputs: Mapping[str, Any] | None = None, *,
           mode: str | list[str] = "updates", **kwargs: Any) -> RunStream:
    """Run in process and stream chunks: ``for chunk in flownb.stream(bp, inputs, mode=...)``."""
    return RunStream(astream(blueprint, inputs, mode=mode, **kwargs))
