"""Every Redis key flownb uses, in one place (the arq lesson: no key strings scattered around).

Per run (``{p}`` = the key prefix, default ``flownb``):

=================================  =====  ========================================================key                                type   contents
=================================  =====  ===============================================================
``{p}:run:<id>:meta``              hash   status, blueprint digest/id, created/finished times, error,
                                          parent link (``run|node|visit``), subflow bundle (one
                                          ``b:<blueprint id>`` → digest field each: short values keep
                                          the hash compact), ``history`` = 1 when the run records
                                          its history (``submit(history=True)``),
                                          ``trace``: the run's trace context (W3C traceparent JSON)
                                          ``paused``/``paused_at``/``paused_by`` while paused (run controls)
``{p}:run:<id>:state``             hash   the shared state, one JSON value per key; node outputs at
                                          ``_outputs.<node>`` (Flowcraft's layout) — per-key fields so
                                          parallel branches never clobber each other; each node's
                                          JSON NodeStats at ``_outputs:<node>`` (``stats_field``: under
                                          the reserved ``_outputs`` prefix, so no state key can take
                                          it; COMMIT writes it with the output, in one ``HSET``)
``{p}:run:<id>:sched``             hash   scheduling: ``active``, ``v:<node>`` visits, ``d:<node>:<visit>``
                                          done markers (the visit's taken edges, JSON: the run's path), ``q:<node>:<slot>`` join FIFOs ("TD…"),
                                          ``c:<node>`` non-empty slots, ``g:<node>`` generations,
                                          ``f:<node>:<gen>`` any-join fired, ``a:<scc>`` loop activity,
                                          ``xr:<edge>`` loop-exit records, ``h`` visits parked for a person;
                                          ``st`` the run's status, ``pz`` its pause flag, ``hy`` its
                                          history flag: copies of the meta's for COMMIT (``set_status``);
                                          for a subflow/map visit
                                          waiting on child runs ``cw:<node>|<visit>`` children left,
                                          ``ch:…`` their ids (JSON), ``cf:…`` the first failed child
``{p}:run:<id>:pending``           hash   ``node|visit`` → JSON item (sources, st q/r/w/p, worker, deliveries;
                                          ``h``/``hj``: parked for a person, with its wait info;
                                          st ``p``: parked while the run is paused, no lease)
``{p}:run:<id>:partial``           set    joins holding partial arrivals (for the end-of-run sweep)
``{p}:run:<id>:xpend``             set    loops with recorded exits not yet delivered
``{p}:run:<id>:nodes``             hash   node id → JSON NodeStats of a run started before the stats
                                          moved into ``state`` (still read, never written)
``{p}:run:<id>:events``            stream the run's events (same model as in process)
``{p}:run:<id>:children``          set    child runs (subflow / map) for cancellation
``{p}:run:<id>:done``              list   one entry (the status), written when the run ends or waits:
                                          waiters block on it (``BLMOVE`` to itself, which puts it
                                          back) instead of waking on every event
``{p}:run:<id>:history``           stream only with ``history=1`` in the meta (``submit(history=True)``):
                                          time travel: ``k=start`` (the inputs), then one ``k=commit`` entry per
                                          committed visit (node, visit, output, taken edges, state
                                          writes, event data, event id), written by ``COMMIT``;
                                          ``k=patch`` (state set by hand: ``w``, ``by``, ``at``), ``k=retry``
``{p}:run:<id>:jobs``              hash   ``node|visit`` → id of the RQ job that carries the queued item
                                          (the reaper leaves items whose job still waits in the queue)
``{p}:alive:<worker>``             string set by a worker's liveness process (renewed every beat, even
                                          while a node holds the GIL): a live worker's leases are spared
``{p}:run:<root>:childruns``       hash   per *root* run: ``total`` child runs started under it (all
                                          levels), ``refused`` once a limit was hit, and one field per
                                          structural item (``run|node|visit``) so a retried start counts
                                          once (see :mod:`flownb.core.limits`)
``{p}:bp:<digest>``                hash   ``json`` (the blueprint) + the compiled graph for the scripts:
                                          ``o:<node>`` out edges (each with its target's join info),
                                          ``i:<node>`` join info (``c``: a subflow/map), ``x:<scc>`` exits,
                                          ``L`` whether it has loops, ``hlen`` its own field count
                                          (scripts check it is complete)
``{p}:bprefs``                     hash   blueprint digest → number of active runs using it (no TTL on
                                          the blueprint while > 0; the last run to end sets it)
``{p}:runs``                       zset   top-level run id → created time (``flownb runs``, ``flownb.runs()``)
``{p}:leases``                     zset   ``run|node|visit`` → deadline (ms): claimed items are renewed by
                                          their worker's heartbeat; expired ones are re-queued by a reaper
``{p}:waits``                      zset   ``run|node|visit`` → deadline (ms) of a parked wait with ``timeout_s``;
                                          the reaper takes the default answer when it passes
``{p}:reaper``                     string lock so one worker reaps at a time
``{p}:workers``                    hash   worker name → JSON (pid, host, state, current node, jobs done)
``{p}:llm:rate:<bucket>``          hash   LLM rate-limit bucket (model or base URL): ``r`` / ``t`` request and
                                          token GCRA times, ``b`` blocked-until (429 Retry-After), seconds
=================================  =====  ===============================================================

The Lua scripts derive a parent run's keys from the prefix (subflow completion notifies the
parent atomically), so flownb needs a single Redis, not Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

RUN_SUFFIXES = ("meta", "state", "sched", "pending", "partial", "xpend", "nodes", "events", "children")

#: The state-hash fields that hold node stats start with this (``_outputs:<node>``); the state
#: keys of a blueprint may not start with ``_outputs`` (``flownb.core.blueprint``).
STATS_PREFIX = "_outputs:"


def stats_field(node: str) -> str:
    """The state-hash field of ``node``'s stats (JSON NodeStats)."""
    return STATS_PREFIX + node


@dataclass(frozen=True)
class Keys:
    prefix: str = "flownb"

    def run(self, run_id: str, part: str) -> str:
        return f"{self.prefix}:run:{run_id}:{part}"

    def meta(self, run_id: str) -> str:
        return self.run(run_id, "meta")

    def state(self, run_id: str) -> str:
        return self.run(run_id, "state")

    def sched(self, run_id: str) -> str:
        return self.run(run_id, "sched")

    def pending(self, run_id: str) -> str:
        return self.run(run_id, "pending")

    def partial(self, run_id: str) -> str:
        return self.run(run_id, "partial")

    def xpend(self, run_id: str) -> str:
        return self.run(run_id, "xpend")

    def nodes(self, run_id: str) -> str:
        return self.run(run_id, "nodes")

    def events(self, run_id: str) -> str:
        return self.run(run_id, "events")

    def children(self, run_id: str) -> str:
        return self.run(run_id, "children")

    def done(self, run_id: str) -> str:
        return self.run(run_id, "done")

    def history(self, run_id: str) -> str:
        return self.run(run_id, "history")

    @property
    def waits(self) -> str:
        return f"{self.prefix}:waits"

    def child_runs(self, root_run_id: str) -> str:
        """The child-run counter of a root run (not per child: every level counts against it)."""
        return self.run(root_run_id, "childruns")

    def run_keys(self, run_id: str) -> list[str]:
        """The per-run keys in the order every script takes them (KEYS[1..9]; done is KEYS[13])."""
        return [self.run(run_id, s) for s in RUN_SUFFIXES]

    def all_run_keys(self, run_id: str) -> list[str]:
        return [*self.run_keys(run_id), self.done(run_id)]

    def jobs(self, run_id: str) -> str:
        return self.run(run_id, "jobs")

    def alive(self, worker: str) -> str:
        return f"{self.prefix}:alive:{worker}"

    def blueprint(self, digest: str) -> str:
        return f"{self.prefix}:bp:{digest}"

    @property
    def bprefs(self) -> str:
        return f"{self.prefix}:bprefs"

    @property
    def runs(self) -> str:
        return f"{self.prefix}:runs"

    @property
    def leases(self) -> str:
        return f"{self.prefix}:leases"

    @property
    def reaper(self) -> str:
        return f"{self.prefix}:reaper"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:workers"

    def llm_rate(self, bucket: str) -> str:
        """An LLM rate-limit bucket shared by every worker (see flownb.distributed.ratelimit)."""
        return f"{self.prefix}:llm:rate:{bucket}"


def lease_member(run_id: str, node: str, visit: int) -> str:
    return f"{run_id}|{node}|{visit}"


def item_field(node: str, visit: int) -> str:
    return f"{node}|{visit}"
