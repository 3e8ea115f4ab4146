"""The human-in-the-loop scripts: park a waiting visit, resume it with an answer (RESUME ends with
COMMIT's body, so an answer commits like a node's output).
"""

from __future__ import annotations

from .assemble import with_prelude
from .run import _COMMIT_BODY

#: Park a visit that waits for a person (a wait/approval node): no lease, no worker holds it; the
#: run's status becomes 'waiting' when nothing else is active (see flownb.engine.waiting).
#: KEYS: the run keys (see module docstring); the waits zset ``{p}:waits`` is derived from
#: ARGV[2] (the prefix), see keys.py. ARGV[1..6] as every run-level script (run id, prefix,
#: events maxlen, TTL, queued and running lease ms); ARGV[7] node, ARGV[8] visit, ARGV[9] wait
#: info (JSON, kept as a string in the item's 'hj'), ARGV[10] timeout (ms) or '', ARGV[11]
#: node_waiting event data (JSON), ARGV[12] node stats (JSON).
#: Every check (status, done marker, pending item) comes before the first write.
#: Returns JSON {"r": "ok"|"stale"|"gone"|"done"|"already", "waiting": bool}.
PARK = with_prelude(r"""
local node, visit = ARGV[7], ARGV[8]
local f = node .. '|' .. visit
local raw, refused = pending_item(node, visit)
if not raw then return refused end
local it = cjson.decode(raw)
if it.h then return cjson.encode({r = 'already'}) end
it.st = 'w'
it.h = 1
it.hj = ARGV[9]
redis.call('HSET', K_PENDING, f, cjson.encode(it))
redis.call('ZREM', K_LEASES, member(node, visit))
redis.call('HINCRBY', K_SCHED, 'h', 1)
redis.call('HSET', K_STATE, '_outputs:' .. node, ARGV[12])
if ARGV[10] ~= '' then
  redis.call('ZADD', PREFIX .. ':waits', NOW_MS + tonumber(ARGV[10]), member(node, visit))
end
xadd(K_EVENTS, 'node_waiting', node, ARGV[11])
maybe_waiting()
return cjson.encode({r = 'ok', waiting = redis.call('HGET', K_META, 'status') == 'waiting'})
""")

#: Answer a parked visit: refuse unless it still waits, then commit the answer with the COMMIT
#: script's own body (output, state, history, edges, joins, completion) — one atomic call, so a
#: second answer finds nothing waiting and is refused.
#: KEYS: the run keys (the waits zset ``{p}:waits`` is derived from ARGV[2]); ARGV: exactly
#: COMMIT's (ARGV[9] is the answer, the node's output).
#: Like COMMIT, nothing is written before the checks: the wait must still be parked and the run's
#: graph complete (else the run is failed by the script, saying why, as COMMIT does).
#: Returns COMMIT's answer, or JSON {"r": "refused", "status": ..., "done": bool}.
RESUME = with_prelude(r"""
local st0 = redis.call('HGET', K_META, 'status')
local raw0 = redis.call('HGET', K_PENDING, ARGV[7] .. '|' .. ARGV[8])
local it0 = raw0 and cjson.decode(raw0)
if (st0 ~= 'waiting' and st0 ~= 'running') or not it0 or not it0.h then
  return cjson.encode({r = 'refused', status = st0 or 'missing',
                       done = redis.call('HEXISTS', K_SCHED, 'd:' .. ARGV[7] .. ':' .. ARGV[8]) == 1})
end
local problem0 = graph_problem()
if problem0 then
  redis.call('ZREM', PREFIX .. ':waits', member(ARGV[7], ARGV[8]))
  local parent, msg = fail_broken(ARGV[7], graph_message(problem0))
  return cjson.encode({r = 'ok', ready = {}, finished = 'failed', parent = parent, error = msg})
end
redis.call('HINCRBY', K_SCHED, 'h', -1)
redis.call('ZREM', PREFIX .. ':waits', member(ARGV[7], ARGV[8]))
if st0 == 'waiting' then
  set_status(K_META, K_SCHED, 'running')
  redis.call('DEL', K_DONE)
end
""" + _COMMIT_BODY)
