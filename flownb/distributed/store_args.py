"""How the store's script calls and reads are built and decoded: pure functions shared by the
blocking :class:`~flownb.distributed.store.RedisStore` (client API, sync node bodies in threads)
and the worker loop's :class:`~flownb.distributed.async_store.AsyncStore`.

Why a module of its own: the two stores run the same Lua scripts with the same KEYS/ARGV; if each
built them itself, a change to a script's arguments would have to be made twice, and a miss
would only show on one path. Here each layout is written once.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.events import Event
from .codec import _s, dumps, loads
from .keys import Keys, item_field
from .store_settings import StoreSettings


def run_script_args(keys: Keys, settings: StoreSettings, run_id: str,
                    digest: str | None) -> tuple[list[str], list[Any]]:
    """KEYS and the leading ARGV every run script takes (see the header of
    :mod:`flownb.distributed.scripts.run`); KEYS[10] is the blueprint of ``digest``."""
    k = keys
    ks = [*k.run_keys(run_id), "", k.leases, k.runs, k.done(run_id), k.bprefs]
    ks[9] = k.blueprint(digest) if digest else k.blueprint("none")
    st = settings
    args = [run_id, k.prefix, st.events_maxlen, st.result_ttl_s,
            int(st.queued_ttl_s * 1000), int(st.lease_ttl_s * 1000)]
    return ks, args


#: ``json.dumps``'s encoder with :func:`~.codec.dumps`'s options, built once (``json.dumps``
#: builds one per call with these options)
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _record(value: Mapping[str, Any]) -> str:
    """:func:`~.codec.dumps` of a flat record flownb builds for each visit (its stats, its event):
    str keys, scalar values, lists of ints. Why: two of them per chain hop, and the strict
    checks (colliding keys in nested dicts, lone surrogates) cannot fail on such a record of
    ASCII text — anything else (NaN, text that is not ASCII, another shape) takes
    :func:`~.codec.dumps`, which says what is wrong."""
    for k, v in value.items():
        t = type(v)
        if type(k) is not str or (t not in _PLAIN and not (
                t is list and all(type(x) is int for x in v))):
            return dumps(value)
    try:
        text = _ENCODE(value)
    except ValueError:  # NaN / inf: the strict path names it
        return dumps(value)
    return text if text.isascii() else dumps(value)


def commit_args(node: str, visit: int, *, output_json: str, taken: Iterable[int],
                stats: Mapping[str, Any], event: Mapping[str, Any],
                writes: Mapping[str, Any] | None = None, claim_for: str = "",
                event_node: str = "") -> list[Any]:
    """The ARGV tail of ``COMMIT`` / ``RESUME``."""
    flat: list[str] = []
    for k, v in (writes or {}).items():
        flat += [k, dumps(v)]
    taken = sorted(taken)
    taken_obj = "{" + ",".join(f'"{i}":true' for i in taken) + "}"
    event = {**event, "taken": taken}  # the path on the live drawings (flownb.core.heat)
    return [node, visit, output_json, taken_obj, _record(stats), _record(event), claim_for,
            event_node, *flat]


def fail_args(node: str, error: Mapping[str, Any], stats: Mapping[str, Any] | None,
              event: Mapping[str, Any] | None) -> list[Any]:
    """The ARGV tail of ``FAIL``."""
    return [node, dumps(dict(error)), dumps(stats) if stats else "", dumps(event) if event else ""]


def event_fields(run_id: str, type_: str, node: str | None, data: Mapping[str, Any]) -> dict[str, str]:
    """The stream entry of one event (encoded at once, so a later change to ``data`` — or a
    value that cannot be stored — shows where the event was emitted)."""
    return Event(type_, run_id, node, dict(data)).to_fields()  # type: ignore[return-value]


def decode_meta(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in raw.items()}


def decode_state(run_id: str, keys: Sequence[str], vals: Sequence[Any]) -> dict[str, Any]:
    """``HMGET`` replies of state fields ``keys``, decoded; absent fields left out."""
    return {k: loads(v, what=f"state field {k!r} of run {run_id}") for k, v in zip(keys, vals)
            if v is not None}


def resume_fields(res: Mapping[str, Any], node: str, visit: int) -> list[str] | None:
    """The sched fields holding a resumed subflow/map visit's child ids and first failed child,
    or ``None`` when the claim reply ``res`` is not such a visit."""
    item = res.get("item")
    if res.get("r") != "ok" or not isinstance(item, dict) or item.get("k") != "resume":
        return None
    f = item_field(node, visit)
    return [f"ch:{f}", f"cf:{f}"]


def add_resume_children(item: dict[str, Any], run_id: str, node: str, ch: Any, cf: Any) -> None:
    if ch is not None:
        item["ch"] = loads(ch, what=f"child ids of {node!r} in run {run_id}")
    if cf is not None:
        item["cf"] = _s(cf)


__all__ = ["add_resume_children", "commit_args", "decode_meta", "decode_state", "event_fields",
           "fail_args", "resume_fields", "run_script_args", "shown_status"]


def shown_status(status: str | None, paused: object) -> str | None:
    """The status a person sees: ``paused`` while a running or waiting run is paused (meta
    ``paused``, :mod:`flownb.distributed.controls`); Redis keeps ``status`` as it was, so the
    workers' checks stay the same. One rule for the handle, ``flownb runs`` and the browser."""
    if status in ("running", "waiting") and paused not in (None, b"", ""):
        return "paused"
    return status

