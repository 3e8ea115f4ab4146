"""The Lua scripts that make every scheduling step atomic on Redis.

Each script is a named constant. All run-level scripts take the same KEYS, in this order
(``Keys.run_keys``)::

    KEYS[1] meta     KEYS[2] state    KEYS[3] sched    KEYS[4] pending   KEYS[5] partial
    KEYS[6] xpend    KEYS[7] nodes    KEYS[8] events   KEYS[9] children  KEYS[10] graph
    KEYS[11] leases  KEYS[12] runs index  KEYS[13] done (one-entry list waiters block on)
    KEYS[14] blueprint references (``{p}:bprefs``: digest -> number of active runs using it)

``_LIB`` is the shared prelude: the join algorithm of :mod:`flownb.engine.scheduler`, line for line
(dead-path elimination with FIFO slots, loop exits delivered when the loop is quiet, and the
end-of-run sweep), plus finalisation (status, events, expiry, waking a parent run). Each script
carries only the part of it that its body uses, the rarely needed helpers made on first use
(:mod:`.assemble`: Redis runs a script's whole text at every call). Everything a
crash could split — writing the output, marking the visit done, counting arrivals at joins,
queueing successors, publishing completion — happens inside one script call, so it is all or
nothing, and the ``d:<node>:<visit>`` done marker makes a redelivered commit a no-op.

Time comes from ``TIME`` inside the script (Redis >= 5 replicates script effects), so deadlines
do not depend on the clocks of the worker machines.

**Nothing is written unless the script can finish.** Redis does not roll a script back when it
raises half-way, so every script checks every key it will need *before* its first write: the
run's meta, and the compiled graph (``graph_problem``: the graph hash stores its own field count,
``hlen``, so one ``HLEN`` proves no field is missing; a plain COMMIT, whose one ``HMGET`` of
graph fields holds all it reads, needs none: :mod:`.ahead`). A run whose graph is gone is failed
by the script itself, with a message saying why — never a done marker with nothing queued.

**A run's status changes only through ``set_status``**, which writes it to the meta and to its
copy in the sched hash (``st``; the pause flag is copied as ``pz``, the history flag as ``hy``):
COMMIT reads them with its scheduling fields instead of reading the meta. A node's stats are the
state hash's ``_outputs:<node>`` field, written with its output.

**Keys live as long as the run.** Per-run keys get no TTL while the run is active and all get
the same TTL when it ends (``finalize`` / ``CANCEL``); its streams are compacted then
(``expire_run_key``: DUMP + RESTORE frees the unused part of a stream's preallocated last node). The blueprints a run uses (its own and its
subflow bundle) are shared between runs, so they are reference-counted in ``{p}:bprefs``: ``START``
takes a reference and removes any TTL, the end of the run drops it, and the last run to end sets
the blueprint's TTL (twice the result TTL, so a finished run's result can still name its nodes).

**Per-item work is O(1).** A ``map`` over n items starts n child runs; the parent's countdown is
one ``HINCRBY`` on the parent's ``cw:<node>|<visit>`` field and the child ids are stored once, in
``ch:<node>|<visit>`` — never inside the pending item that every child would otherwise decode and
re-encode (that made a 50,000-item map quadratic). Child runs are not in the runs index.
"""

from __future__ import annotations

from .leases import RENEW, REQUEUE, RESERVE_CHILDREN, UPLOAD
from .prelude import _LIB
from .ratelimit import RATE_LIMIT
from .run import CANCEL, CLAIM, CLAIM_MANY, COMMIT, FAIL, START, WAIT_CHILDREN
from .waiting import PARK, RESUME

ALL = {"START": START, "CLAIM": CLAIM, "CLAIM_MANY": CLAIM_MANY, "COMMIT": COMMIT, "FAIL": FAIL, "CANCEL": CANCEL,
       "WAIT_CHILDREN": WAIT_CHILDREN, "REQUEUE": REQUEUE, "RENEW": RENEW, "UPLOAD": UPLOAD,
       "RESERVE_CHILDREN": RESERVE_CHILDREN, "PARK": PARK, "RESUME": RESUME}

__all__ = ["ALL", "START", "CLAIM", "CLAIM_MANY", "COMMIT", "FAIL", "CANCEL", "WAIT_CHILDREN", "REQUEUE",
           "RENEW", "UPLOAD", "RESERVE_CHILDREN", "PARK", "RESUME", "RATE_LIMIT", "_LIB"]
