"""Folding a run's events into node states for a drawing (subflow children included)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.events import Event

# -- events -> states --------------------------------------------------------------------------------

_CHILD_RUN = re.compile(r"(?s)(.+)\.(\d+)(\[\d+\])?")


def states_from_events(events: Iterable[Event], *, run_id: str | None = None) -> dict[str, str]:
    """Fold a run's events into ``{node id: status}`` for :func:`to_dot`.

    ``node_started`` -> running, ``node_retrying`` -> retrying, ``node_succeeded`` -> succeeded,
    ``node_skipped`` -> skipped, ``node_failed`` -> failed. When a ``node_fallback`` follows a
    failure the failed node becomes ``replaced`` and the fallback node running, then succeeded
    when the runtime commits its result (the runtime reports that success under the replaced
    node's id, which stays ``replaced``). A node whose failure ends the run is only named by
    ``run_failed``, so that marks it failed; nodes still running when a run fails or is
    cancelled become ``cancelled``.

    The run is ``run_id`` or that of the first event; child runs of its subflows (run id
    ``<run>/<node>.<visit>``) are folded under ``"<node>/<child node>"`` keys, which is how
    :func:`to_dot` addresses subflow clusters. Events of map items and of unrelated runs are
    ignored, so one shared bus or stream can be passed as is.
    """
    states: dict[str, str] = {}
    prefixes: dict[str, str | None] = {}  # run id -> key prefix (None: a run we do not draw)
    rescued: dict[str, str] = {}  # replaced node key -> fallback node key
    root = run_id

    def prefix_of(rid: str) -> str | None:
        if rid in prefixes:
            return prefixes[rid]
        parent = max((k for k in prefixes if rid.startswith(k + "/")), key=len, default=None)
        result: str | None = None
        if parent is not None and prefixes[parent] is not None:
            m = _CHILD_RUN.fullmatch(rid[len(parent) + 1:])
            if m and not m.group(3):
                result = f"{prefixes[parent]}{m.group(1)}/"
        prefixes[rid] = result
        return result

    for event in events:
        rid = str(getattr(event, "run_id", "") or "")
        if root is None:
            root = rid
        if root not in prefixes:
            prefixes[root] = ""
        prefix = prefix_of(rid)
        if prefix is None:
            continue
        kind = getattr(event, "type", "")
        node = getattr(event, "node_id", None)
        data = getattr(event, "data", None) or {}
        key = f"{prefix}{node}" if node else None
        if kind == "node_started" and key:
            states[key] = "running"
            rescued.pop(key, None)
        elif kind == "node_retrying" and key:
            states[key] = "retrying"
        elif kind == "node_succeeded" and key:
            fb = rescued.pop(key, None)
            if fb is not None:
                states[fb] = "succeeded"
            else:
                states[key] = "succeeded"
        elif kind == "node_failed" and key:
            states[key] = "failed"
        elif kind == "node_fallback" and key:
            replaced = data.get("replaces") if isinstance(data, Mapping) else None
            states[key] = "running"
            if replaced:
                rkey = f"{prefix}{replaced}"
                states[rkey] = "replaced"
                rescued[rkey] = key
        elif kind == "node_skipped" and key:
            states[key] = "skipped"
        elif kind in ("run_failed", "run_cancelled"):
            for k, v in states.items():
                if k.startswith(prefix) and v in ("running", "retrying"):
                    states[k] = "cancelled"
            if kind == "run_failed" and key:
                states[key] = "failed"
                for rkey, fb in list(rescued.items()):
                    if fb == key:
                        del rescued[rkey]
    return states
