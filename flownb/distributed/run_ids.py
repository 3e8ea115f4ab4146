"""Which run ids a user may choose, so that none can take the place of one flownb generates.

Why: a subflow or map node starts child runs named ``<parent>.<node>.<visit>.<index>`` and
treats an existing run of that id as its own child already started (a retried start). A user
run submitted earlier as ``parent.m.1.0`` would be taken for that child, and the parent would
wait for ever on a run that never reports to it. So ``.`` is reserved for generated ids, and
``|`` for the lease members and item fields (``<run>|<node>|<visit>``) that embed a run id.
"""

from __future__ import annotations

from ..core.errors import ExecutorError

#: the longest run id a user may choose (ids are part of every key of the run)
MAX_RUN_ID_LEN = 200
#: characters generated ids and key members use as separators
RESERVED = (".", "|")


def check_run_id(run_id: object, *, what: str = "run id") -> str:
    """Return ``run_id`` when a user may choose it, else raise :class:`ExecutorError` saying why."""
    if not isinstance(run_id, str) or not run_id:
        raise ExecutorError(f"{what} must be a non-empty string, got {run_id!r}")
    hint = ("choose letters, digits, '-', '_' or ':' (leave run_id unset for a generated one)")
    if len(run_id) > MAX_RUN_ID_LEN:
        raise ExecutorError(f"{what} is {len(run_id)} characters long, more than "
                            f"{MAX_RUN_ID_LEN}; {hint}")
    for ch in RESERVED:
        if ch in run_id:
            raise ExecutorError(f"{what} {run_id!r} contains {ch!r}, which is reserved for the "
                                "ids flownb generates (child runs are '<parent>.<node>.<visit>."
                                f"<index>', leases '<run>|<node>|<visit>'); {hint}")
    if not run_id.isprintable() or any(c.isspace() for c in run_id):
        raise ExecutorError(f"{what} {run_id!r} contains whitespace or a control character; {hint}")
    try:
        run_id.encode("utf-8")
    except UnicodeEncodeError:
        raise ExecutorError(f"{what} {run_id!r} is not valid Unicode text (a lone surrogate); "
                            f"{hint}") from None
    return run_id


__all__ = ["MAX_RUN_ID_LEN", "RESERVED", "check_run_id"]
