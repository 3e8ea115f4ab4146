"""Tracebacks that start at the user's code: flownb's and asyncio's frames hidden, as pytest and
IPython hide their own internals.

Why: a node that fails inside ``flownb.run`` used to print ~60 lines of the engine, the event
loop bridge and asyncio before the user's two lines. What a person needs is the error, the node,
the run and *their* frames. Nothing is lost: :attr:`flownb.RunFailed.traceback` keeps the node's
full original traceback, and ``FLOWNB_FULL_TRACEBACK=1`` in the environment turns the trimming
off everywhere (the message and the raised exception keep every frame).
"""

from __future__ import annotations

import os
import re
from typing import TypeVar

#: set to 1 (or true/yes) for every frame, flownb's included
FULL_TRACEBACK_ENV = "FLOWNB_FULL_TRACEBACK"

# a frame of flownb's layers, of the facade, of asyncio / the thread pool / threading, or of RQ
_INTERNAL = re.compile(
    r'File "[^"]*?[/\\](?:flownb[/\\](?:core|engine|render|llm|distributed|notebook|cli)[/\\]'
    r'|flownb[/\\]__init__\.py"|asyncio[/\\]|concurrent[/\\]futures[/\\]|threading\.py"'
    r'|rq[/\\])')

E = TypeVar("E", bound=BaseException)


def full_wanted() -> bool:
    """Whether the user asked for every frame (``FLOWNB_FULL_TRACEBACK=1``)."""
    return os.environ.get(FULL_TRACEBACK_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def user_frames(text: str) -> str:
    """``text`` (a formatted traceback, chained ones included) without flownb's and asyncio's
    frames; a line says how many were hidden and how to see them. Unchanged when every frame
    is internal (a built-in node failed: flownb's frames are then all there is) or when
    :func:`full_wanted`."""
    if full_wanted() or not text:
        return text
    lines = text.splitlines()
    out: list[str] = []
    hidden = user = 0
    run = 0  # internal frames hidden since the last kept line
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith('  File "'):
            j = i + 1
            while j < len(lines) and lines[j].startswith("    "):
                j += 1
            if _INTERNAL.search(line):
                run += 1
                hidden += 1
            else:
                user += 1
                if run:
                    out.append(_marker(run))
                    run = 0
                out.extend(lines[i:j])
            i = j
            continue
        if run:
            out.append(_marker(run))
            run = 0
        out.append(line)
        i += 1
    if not hidden or not user:
        return text
    return "\n".join(out)


def _marker(n: int) -> str:
    return (f"  [{n} frame{'s' if n > 1 else ''} of flownb/asyncio hidden: "
            f"{FULL_TRACEBACK_ENV}=1 shows them]")


def hide_internals(exc: E) -> E:
    """``exc`` ready to be raised again from a public entry point (``raise hide_internals(exc)
    from None`` inside ``except``): the frames it went through inside flownb are dropped, so
    the traceback shown starts at the caller's frame. Unchanged when :func:`full_wanted`."""
    if full_wanted():
        return exc
    return exc.with_traceback(None)


__all__ = ["FULL_TRACEBACK_ENV", "full_wanted", "hide_internals", "user_frames"]
