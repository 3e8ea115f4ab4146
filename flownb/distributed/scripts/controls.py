"""The run-control scripts (issue 22): pause a run, resume it, patch its state, retry a node of a
failed or cancelled run in place, mark a node completed by hand. Each is the prelude plus its own
body; KEYS are the run keys (see :mod:`flownb.distributed.scripts`), ARGV[1..6] as every
run-level script. The Python side is :mod:`flownb.distributed.controls`.

Why scripts: each control changes the run's status, its pending items and its leases together;
done in several round trips, a worker claiming an item in between would start a visit of a paused
run, or a retried node would be queued twice. Every script checks everything before its first
write and answers ``{"r": "refused", ...}`` with what it found, so the client can say why.

Pausing parks items instead of holding workers: the claim path (``park_paused`` in the prelude)
turns the item of a paused run into ``st = 'p'`` without a lease, so no worker holds it and the
reaper never re-queues it; ``RESUME_RUN`` gives them leases again and returns them to enqueue.
"""

from __future__ import annotations

from .assemble import with_prelude
from .run import _COMMIT_BODY

#: Refusals shared by RETRY and SKIP_FAILED (``node`` is ARGV[7]); nil when the node may be re-run.
_REVIVE = r"""
local function refuse(why, extra)
  local out = extra or {}
  out.r = 'refused'
  out.why = why
  out.status = redis.call('HGET', K_META, 'status') or 'missing'
  return cjson.encode(out)
end

local function revive_refusal(node)
  local st = redis.call('HGET', K_META, 'status')
  if st ~= 'failed' and st ~= 'cancelled' then return refuse('status') end
  if (redis.call('HGET', K_META, 'parent') or '') ~= '' then return refuse('child') end
  local problem = graph_problem()
  if problem then return refuse('graph', {problem = problem}) end
  if redis.call('HEXISTS', K_GRAPH, 'i:' .. node) == 0 then return refuse('unknown') end
  local ns = redis.call('HGET', K_STATE, '_outputs:' .. node) or redis.call('HGET', K_NODES, node)
  if ns and cjson.decode(ns).status == 'succeeded' then return refuse('succeeded') end
  local v = tonumber(redis.call('HGET', K_SCHED, 'v:' .. node) or '0') + 1
  if v > ginfo(node).m then return refuse('max_visits', {visits = v}) end
  return nil
end

-- the run is running again: no end, no TTL, its blueprints held; the counters of the visits that
-- died with the run start again at 0 (nothing runs now)
local function revive()
  set_status(K_META, K_SCHED, 'running')
  redis.call('HDEL', K_META, 'finished_at', 'error', 'paused', 'paused_at', 'paused_by')
  redis.call('HDEL', K_SCHED, 'pz')  -- (the pause flag's copy for COMMIT, see set_status)
  redis.call('DEL', K_DONE)
  hold_blueprints(meta_digests(K_META))
  for _, k in ipairs({K_META, K_STATE, K_SCHED, K_PARTIAL, K_XPEND, K_NODES, K_EVENTS, K_CHILDREN,
                      run_key(RUN, 'jobs'), run_key(RUN, 'history')}) do
    redis.call('PERSIST', k)
  end
  redis.call('HSET', K_SCHED, 'active', 0, 'h', 0)
  for _, f in ipairs(redis.call('HKEYS', K_SCHED)) do
    if string.sub(f, 1, 2) == 'a:' then redis.call('HSET', K_SCHED, f, 0) end
  end
end
"""

#: Pause a running (or waiting) run: queued items are parked (st 'p', no lease); running ones
#: finish and their successors are parked by the claim path.
#: KEYS: the run keys; ARGV[7] who pauses.
#: Returns JSON {"r": "ok", "parked": n, "running": n} or {"r": "refused"|"already", "status"}.
PAUSE = with_prelude(r"""
local st = redis.call('HGET', K_META, 'status')
if st ~= 'running' and st ~= 'waiting' then return cjson.encode({r = 'refused', status = st or 'missing'}) end
if redis.call('HGET', K_META, 'paused') == '1' then return cjson.encode({r = 'already', status = st}) end
redis.call('HSET', K_META, 'paused', '1', 'paused_at', NOW_S, 'paused_by', ARGV[7])
redis.call('HSET', K_SCHED, 'pz', '1')  -- (the pause flag's copy for COMMIT, see set_status)
local parked, running = 0, 0
local all = redis.call('HGETALL', K_PENDING)
for i = 1, #all, 2 do
  local it = cjson.decode(all[i + 1])
  if it.st == 'q' then
    it.st = 'p'
    redis.call('HSET', K_PENDING, all[i], cjson.encode(it))
    redis.call('ZREM', K_LEASES, RUN .. '|' .. all[i])
    parked = parked + 1
  elseif it.st == 'r' then running = running + 1 end
end
xadd(K_EVENTS, 'run_paused', '', cjson.encode({by = ARGV[7], parked = parked, running = running}))
return cjson.encode({r = 'ok', parked = parked, running = running})
""")

#: Resume a paused run: parked items are queued again (with a queued lease).
#: KEYS: the run keys; ARGV[7] who resumes.
#: Returns JSON {"r": "ok", "ready": [[node, visit], ...]} or {"r": "refused", "status"}.
RESUME_RUN = with_prelude(r"""
local st = redis.call('HGET', K_META, 'status')
if redis.call('HGET', K_META, 'paused') ~= '1' then
  return cjson.encode({r = 'refused', status = st or 'missing'})
end
redis.call('HDEL', K_META, 'paused', 'paused_at', 'paused_by')
redis.call('HDEL', K_SCHED, 'pz')  -- (the pause flag's copy for COMMIT, see set_status)
local out = {}
local all = redis.call('HGETALL', K_PENDING)
for i = 1, #all, 2 do
  local it = cjson.decode(all[i + 1])
  if it.st == 'p' then
    it.st = 'q'
    redis.call('HSET', K_PENDING, all[i], cjson.encode(it))
    redis.call('ZADD', K_LEASES, NOW_MS + QUEUED_MS, RUN .. '|' .. all[i])
    local node, visit = string.match(all[i], '^(.*)|(%d+)$')
    table.insert(out, {node, tonumber(visit)})
  end
end
xadd(K_EVENTS, 'run_resumed', '', cjson.encode({by = ARGV[7], queued = #out}))
return cjson.encode({r = 'ok', ready = out, status = st})
""")

#: Merge values into a paused or waiting run's state, recorded in the history (``k=patch``) when
#: the run records one (``submit(history=True)``).
#: KEYS: the run keys; ARGV[7] who, ARGV[8..] state k, v pairs (v JSON).
#: Refused while the run is neither paused nor waiting, or while a visit still runs (its
#: commit would race the patch). Returns JSON {"r": "ok"} or {"r": "refused", "status",
#: "paused", "running"}.
PATCH_STATE = with_prelude(r"""
local st = redis.call('HGET', K_META, 'status')
local paused = redis.call('HGET', K_META, 'paused') == '1'
local running = 0
for _, raw in ipairs(redis.call('HVALS', K_PENDING)) do
  if cjson.decode(raw).st == 'r' then running = running + 1 end
end
if not ((st == 'waiting') or (st == 'running' and paused)) or running > 0 then
  return cjson.encode({r = 'refused', status = st or 'missing', paused = paused, running = running})
end
for i = 8, #ARGV, 2 do redis.call('HSET', K_STATE, ARGV[i], ARGV[i + 1]) end
if redis.call('HGET', K_META, 'history') == '1' then  -- a run that records its history
  redis.call('XADD', run_key(RUN, 'history'), '*', 'k', 'patch', 'w', json_pairs(8), 'by', ARGV[7],
             'at', NOW_S)
end
local keys = {}
for i = 8, #ARGV, 2 do table.insert(keys, ARGV[i]) end
xadd(K_EVENTS, 'state_patched', '', cjson.encode({by = ARGV[7], keys = keys}))
return cjson.encode({r = 'ok'})
""")

#: Re-run a node of a failed or cancelled run in place (same run id): upstream outputs and state
#: stay, the node gets a new visit, the nodes after it run as usual.
#: KEYS: the run keys; ARGV[7] node, ARGV[8] its sources (JSON list), ARGV[9] who.
#: Returns JSON {"r": "ok", "ready": [[node, visit]]} or {"r": "refused", "why", "status"}.
RETRY = with_prelude(_REVIVE + r"""
local node = ARGV[7]
local refusal = revive_refusal(node)
if refusal then return refusal end
revive()
redis.call('HDEL', K_STATE, '_outputs:' .. node)
redis.call('HDEL', K_NODES, node)  -- (a run started before the stats moved)
fire(node, cjson.decode(ARGV[8]))
queue_ready()
local visit = READY[1][2]
xadd(K_EVENTS, 'run_retried', node, cjson.encode({by = ARGV[9], visit = visit}))
if redis.call('HGET', K_META, 'history') == '1' then
  redis.call('XADD', run_key(RUN, 'history'), '*', 'k', 'retry', 'n', node, 'v', visit, 'by', ARGV[9],
             'at', NOW_S)
end
return cjson.encode({r = 'ok', ready = {{node, visit}}})
""")

#: Mark a node of a failed or cancelled run completed by hand and go on: the run is revived and
#: the node's new visit ARGV[8] (the client read it as ``v:<node>`` + 1) commits with COMMIT's body.
#: KEYS: the run keys; ARGV: exactly COMMIT's (ARGV[9] is the output given by hand).
#: Returns COMMIT's answer, or {"r": "refused", "why", "status"}.
SKIP_FAILED = with_prelude(_REVIVE + r"""
local refusal = revive_refusal(ARGV[7])
if refusal then return refusal end
if tonumber(redis.call('HGET', K_SCHED, 'v:' .. ARGV[7]) or '0') + 1 ~= tonumber(ARGV[8]) then
  return refuse('raced')
end
revive()
redis.call('HSET', K_SCHED, 'v:' .. ARGV[7], ARGV[8], 'active', 1)
local sinfo = ginfo(ARGV[7])
if sinfo.s >= 0 then redis.call('HINCRBY', K_SCHED, 'a:' .. sinfo.s, 1) end
redis.call('HSET', K_PENDING, ARGV[7] .. '|' .. ARGV[8], cjson.encode({st = 'q'}))
xadd(K_EVENTS, 'run_retried', ARGV[7], cjson.encode({visit = tonumber(ARGV[8]), skipped = true}))
""" + _COMMIT_BODY)

#: Mark a queued (or parked) visit of a running or paused run completed by hand: COMMIT's body,
#: after checking the visit has not started.
#: KEYS: the run keys; ARGV: exactly COMMIT's. Returns COMMIT's answer, or {"r": "refused",
#: "status", "item": its st}.
SKIP_PENDING = with_prelude(r"""
local st0 = redis.call('HGET', K_META, 'status')
local raw0 = redis.call('HGET', K_PENDING, ARGV[7] .. '|' .. ARGV[8])
local it0 = raw0 and cjson.decode(raw0)
if st0 ~= 'running' or not it0 or (it0.st ~= 'q' and it0.st ~= 'p') then
  return cjson.encode({r = 'refused', status = st0 or 'missing', item = it0 and it0.st or 'gone'})
end
""" + _COMMIT_BODY)

#: every script here by name (registered on a store by flownb.distributed.controls)
CONTROLS = {"PAUSE": PAUSE, "RESUME_RUN": RESUME_RUN, "PATCH_STATE": PATCH_STATE, "RETRY": RETRY,
            "SKIP_FAILED": SKIP_FAILED, "SKIP_PENDING": SKIP_PENDING}

__all__ = ["CONTROLS", "PATCH_STATE", "PAUSE", "RESUME_RUN", "RETRY", "SKIP_FAILED", "SKIP_PENDING"]
