"""Import the LLM client's modules before a worker's loop runs visits.

Why: whatever the first LLM request imports is imported on the thread that makes it — a
worker's event loop — and every visit in flight waits meanwhile: ``openai`` itself (~1 s), and
on first use the node types, the HTTP transport and anyio's asyncio backend (py-spy: ~75 ms of
a cold worker's loop thread, during the first batch of a fresh cluster).
"""

from __future__ import annotations

import importlib
import importlib.util

#: imported on first use otherwise (names of other openai versions' stacks are skipped)
FIRST_USE = ("openai", "flownb.llm.nodes", "httpcore", "httpcore2", "h11",
             "anyio._backends._asyncio")


def preload() -> list[str]:
    """Import :data:`FIRST_USE` now, when ``openai`` is installed; returns what was imported."""
    if importlib.util.find_spec("openai") is None:
        return []
    done = []
    for name in FIRST_USE:
        try:
            importlib.import_module(name)
        except ImportError:  # not this openai version's HTTP stack
            continue
        done.append(name)
    return done


__all__ = ["FIRST_USE", "preload"]
