"""The lease scripts: re-queue expired leases, upload blueprints, renew leases, reserve child
runs. They work on single keys, not the run keys, so they carry no prelude.
"""

from __future__ import annotations

#: Re-queue items whose lease expired (their worker died, or their enqueue was lost): a running
#: item goes back to queued (so the next CLAIM takes it over, delivery + 1); a structural item that
#: was still creating its child runs is flagged so the next CLAIM finishes creating them.
#: A running item whose worker's liveness key (``{p}:alive:<worker>``) is set is spared: its lease
#: is extended by ARGV[4] ms instead (the worker lives, e.g. busy in a node holding the GIL).
#: KEYS[1] leases; ARGV[1] prefix, ARGV[2] queued lease (ms), ARGV[3] max items, ARGV[4] lease (ms).
#: Returns JSON [[run, node, visit], ...] to enqueue again.
REQUEUE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local out = {}
for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  local run, node, visit = string.match(m, '^(.*)|(.*)|(%d+)$')
  local base = ARGV[1] .. ':run:' .. run .. ':'
  local raw = run and redis.call('HGET', base .. 'pending', node .. '|' .. visit)
  if (not raw) or redis.call('HGET', base .. 'meta', 'status') ~= 'running' then
    redis.call('ZREM', KEYS[1], m)
  else
    local it = cjson.decode(raw)
    if it.st == 'r' and it.w and ARGV[4] and redis.call('EXISTS', ARGV[1] .. ':alive:' .. it.w) == 1 then
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[4]), m)
    else
      if it.st == 'w' then it.cr = 1 else it.st = 'q' end
      redis.call('HSET', base .. 'pending', node .. '|' .. visit, cjson.encode(it))
      redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), m)
      table.insert(out, {run, node, tonumber(visit)})
    end
  end
end
return cjson.encode(out)
"""

#: Store a blueprint's compiled graph (ARGV[3..] field, value pairs; none = only refresh) and give
#: it a TTL unless an active run holds it (see ``hold_blueprints``).
#: KEYS[1] the blueprint hash, KEYS[2] blueprint references; ARGV[1] digest, ARGV[2] TTL (s).
#: Returns the number of fields now stored (0 = not there: upload it).
UPLOAD = r"""
for i = 3, #ARGV, 400 do  -- one HSET per 200 fields (Lua's unpack limit), not one per field
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 399, #ARGV)))
end
if tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') <= 0 then
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return redis.call('HLEN', KEYS[1])
"""

#: Renew the leases of the items a worker is running.
#: KEYS[1] leases; ARGV[1] lease (ms), ARGV[2..] members.
RENEW = r"""
local t = redis.call('TIME')
local dl = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local n = 0
for i = 2, #ARGV do n = n + redis.call('ZADD', KEYS[1], 'XX', 'CH', dl, ARGV[i]) end
return n
"""

#: Count the child runs a structural item (subflow/map) is about to start against its root run's
#: limit (flownb.core.limits): atomic, so workers starting children at once cannot overshoot; a retried
#: start of the same item (the reaper's 'create') counts once; once refused, always refused, so
#: sibling branches of a failing root stop creating runs; nothing is counted for a root that ended.
#: KEYS[1] the root's child-run counter hash, KEYS[2] the root's meta;
#: ARGV[1] item (run|node|visit), ARGV[2] children wanted, ARGV[3] max child runs, ARGV[4] ttl (s).
#: Returns JSON {"r": "ok"|"refused"|"stopped", "total": n, "status": root status}.
RESERVE_CHILDREN = r"""
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return cjson.encode({r = 'ok', total = tonumber(redis.call('HGET', KEYS[1], 'total'))})
end
local status = redis.call('HGET', KEYS[2], 'status')
if status ~= 'running' then return cjson.encode({r = 'stopped', status = status or 'missing'}) end
local total = tonumber(redis.call('HGET', KEYS[1], 'total') or '0') + tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[1], 'refused') == 1 or total > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'refused', 1)
  redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
  return cjson.encode({r = 'refused', total = total})
end
redis.call('HSET', KEYS[1], 'total', total, ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return cjson.encode({r = 'ok', total = total})
"""
