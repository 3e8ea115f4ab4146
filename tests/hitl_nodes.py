"""Node types for the human-in-the-loop, streaming and time-travel tests (imported by workers).

``hitl-count`` proves how often a node body really ran, across processes: it INCRs a Redis key
named ``count:<node>`` in the database ``params.redis`` (outside flownb's commit path).
"""

from __future__ import annotations

from typing import Any

import flownb


@flownb.node("hitl-count")
def count(ctx: flownb.NodeContext) -> Any:
    url = ctx.params.get("redis")
    if url:
        import redis

        redis.Redis.from_url(str(url)).incr(f"count:{ctx.node_id}")
    text = ctx.params.get("text", ctx.node_id)
    ctx.state[f"seen_{ctx.node_id}"] = ctx.visit
    return f"{text}({ctx.input if isinstance(ctx.input, str) else ''})"


@flownb.node("hitl-draft")
def draft(ctx: flownb.NodeContext) -> Any:
    """Drafts a reply from state ``topic`` and ``tone`` (a fork may edit ``tone``)."""
    url = ctx.params.get("redis")
    if url:
        import redis

        redis.Redis.from_url(str(url)).incr(f"count:{ctx.node_id}")
    tone = ctx.state.get("tone", "polite")
    return f"[{tone}] reply about {ctx.state.get('topic', '?')}"


@flownb.node("hitl-ask")
def ask(ctx: flownb.NodeContext) -> Any:
    """Any node may ask a person: returns a wait request built from its input."""
    return flownb.wait_for(f"publish {ctx.input!r}?", choices=["yes", "no"])
