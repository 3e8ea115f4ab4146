"""The Lua scripts that make every scheduling step atomic on Redis.

Each script is a named constant. All run-level scripts take the same KEYS, in this order
(``Keys.run_keys``)::

    KEYS[1] meta     KEYS[2] state    KEYS[3] sched    KEYS[4] pending   KEYS[5] partial
    KEYS[6] xpend    KEYS[7] nodes    KEYS[8] events   KEYS[9] children  KEYS[10] graph
    KEYS[11] leases  KEYS[12] runs index  KEYS[13] done (one-entry stream waiters block on)

``_LIB`` is the shared prelude: the join algorithm of :mod:`flownb.scheduler`, line for line
(dead-path elimination with FIFO slots, loop exits delivered when the loop is quiet, and the
end-of-run sweep), plus finalisation (status, events, expiry, waking a parent run). Everything a
crash could split — writing the output, marking the visit done, counting arrivals at joins,
queueing successors, publishing completion — happens inside one script call, so it is all or
nothing, and the ``d:<node>:<visit>`` done marker makes a redelivered commit a no-op.

Time comes from ``TIME`` inside the script (Redis >= 5 replicates script effects), so deadlines
do not depend on the clocks of the worker machines.
"""

from __future__ import annotations

_LIB = r"""
local K_META, K_STATE, K_SCHED, K_PENDING, K_PARTIAL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_XPEND, K_NODES, K_EVENTS, K_CHILDREN, K_GRAPH = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_LEASES, K_RUNS, K_DONE = KEYS[11], KEYS[12], KEYS[13]
local RUN, PREFIX = ARGV[1], ARGV[2]
local MAXLEN, TTL = tonumber(ARGV[3]), tonumber(ARGV[4])
local QUEUED_MS, LEASE_MS = tonumber(ARGV[5]), tonumber(ARGV[6])
local _t = redis.call('TIME')
local NOW_MS = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
local NOW_S = string.format('%d.%06d', _t[1], _t[2])

local function xadd(key, typ, node, data)
  redis.call('XADD', key, 'MAXLEN', '~', MAXLEN, '*', 't', typ, 'n', node or '', 'ts', NOW_S,
             'd', data or '{}')
end

local _info, _out = {}, {}
local function ginfo(node)
  local i = _info[node]
  if i == nil then
    local raw = redis.call('HGET', K_GRAPH, 'i:' .. node)
    if not raw then error('flownb: graph has no node ' .. node) end
    i = cjson.decode(raw)
    _info[node] = i
  end
  return i
end
local function gout(node)
  local o = _out[node]
  if o == nil then
    o = cjson.decode(redis.call('HGET', K_GRAPH, 'o:' .. node) or '[]')
    _out[node] = o
  end
  return o
end

local READY, SKIPPED, FAILED = {}, {}, nil

local function fire(node, sources)
  local info = ginfo(node)
  local v = redis.call('HINCRBY', K_SCHED, 'v:' .. node, 1)
  if v > info.m then
    FAILED = {node = node, visits = v, max = info.m}
    return
  end
  redis.call('HINCRBY', K_SCHED, 'active', 1)
  if info.s >= 0 then redis.call('HINCRBY', K_SCHED, 'a:' .. info.s, 1) end
  table.insert(READY, {node, v, sources})
end

local skip, pop_ready

local function resolve_out(node, taken, work)
  local scc = ginfo(node).s
  for _, e in ipairs(gout(node)) do
    local t = taken[tostring(e[1])] == true
    if e[3] == 1 then
      if t then fire(e[2], {node}) end
    elseif e[3] == 2 then
      local key = 'xr:' .. e[1]
      if t then redis.call('HSET', K_SCHED, key, 'T') else redis.call('HSETNX', K_SCHED, key, 'D') end
      redis.call('SADD', K_XPEND, scc)
    else
      table.insert(work, {e[2], e[4], t, node})
    end
  end
end

local function deliver(target, pos, t, source, work)
  local info = ginfo(target)
  if info.n == 1 then
    if t then fire(target, {source}) else skip(target, work) end
    return
  end
  local qk = 'q:' .. target .. ':' .. pos
  local q = redis.call('HGET', K_SCHED, qk) or ''
  if t and info.j == 'any' then
    local gen = tonumber(redis.call('HGET', K_SCHED, 'g:' .. target) or '0') + string.len(q)
    if redis.call('HSETNX', K_SCHED, 'f:' .. target .. ':' .. gen, '1') == 1 then
      fire(target, {source})
    end
  end
  if q == '' then redis.call('HINCRBY', K_SCHED, 'c:' .. target, 1) end
  redis.call('HSET', K_SCHED, qk, q .. (t and 'T' or 'D'))
  redis.call('SADD', K_PARTIAL, target)
  pop_ready(target, info, work)
end

pop_ready = function(target, info, work)
  while tonumber(redis.call('HGET', K_SCHED, 'c:' .. target) or '0') == info.n do
    local gen = tonumber(redis.call('HGET', K_SCHED, 'g:' .. target) or '0')
    redis.call('HSET', K_SCHED, 'g:' .. target, gen + 1)
    local srcs, nonempty = {}, 0
    local names = cjson.decode(redis.call('HGET', K_GRAPH, 'src:' .. target))
    for p = 0, info.n - 1 do
      local qk = 'q:' .. target .. ':' .. p
      local q = redis.call('HGET', K_SCHED, qk) or 'D'
      local rest = string.sub(q, 2)
      if rest == '' then redis.call('HDEL', K_SCHED, qk)
      else redis.call('HSET', K_SCHED, qk, rest); nonempty = nonempty + 1 end
      if string.sub(q, 1, 1) == 'T' then table.insert(srcs, names[p + 1]) end
    end
    redis.call('HSET', K_SCHED, 'c:' .. target, nonempty)
    if info.j == 'all' then
      if #srcs > 0 then fire(target, srcs) else skip(target, work) end
    else
      if redis.call('HDEL', K_SCHED, 'f:' .. target .. ':' .. gen) == 0 then skip(target, work) end
    end
  end
  if tonumber(redis.call('HGET', K_SCHED, 'c:' .. target) or '0') == 0 then
    redis.call('SREM', K_PARTIAL, target)
  end
end

skip = function(target, work)
  table.insert(SKIPPED, target)
  resolve_out(target, {}, work)
end

local function drain(work)
  local guard = 0
  while true do
    local head = 1
    while head <= #work do
      local w = work[head]
      deliver(w[1], w[2], w[3], w[4], work)
      head = head + 1
      guard = guard + 1
      if guard > 1000000 then error('flownb: scheduling did not converge') end
    end
    work = {}
    local pend = redis.call('SMEMBERS', K_XPEND)
    table.sort(pend, function(a, b) return tonumber(a) < tonumber(b) end)
    for _, s in ipairs(pend) do
      local quiet = tonumber(redis.call('HGET', K_SCHED, 'a:' .. s) or '0') == 0
      if quiet then
        for _, m in ipairs(cjson.decode(redis.call('HGET', K_GRAPH, 'n:' .. s) or '[]')) do
          if redis.call('SISMEMBER', K_PARTIAL, m) == 1 then quiet = false; break end
        end
      end
      if quiet then
        redis.call('SREM', K_XPEND, s)
        for _, x in ipairs(cjson.decode(redis.call('HGET', K_GRAPH, 'x:' .. s) or '[]')) do
          local rec = redis.call('HGET', K_SCHED, 'xr:' .. x[1])
          if rec then
            redis.call('HDEL', K_SCHED, 'xr:' .. x[1])
            table.insert(work, {x[2], x[3], rec == 'T', x[4]})
          end
        end
      end
    end
    if #work == 0 then
      local active = tonumber(redis.call('HGET', K_SCHED, 'active') or '0')
      if active == 0 and redis.call('SCARD', K_PARTIAL) > 0 then
        -- settle one join at a time, the most upstream (lowest topological rank) first
        local target, best = nil, nil
        for _, m in ipairs(redis.call('SMEMBERS', K_PARTIAL)) do
          local r = ginfo(m).t
          if best == nil or r < best or (r == best and m < target) then target, best = m, r end
        end
        local info = ginfo(target)
        for p = 0, info.n - 1 do
          local qk = 'q:' .. target .. ':' .. p
          if (redis.call('HGET', K_SCHED, qk) or '') == '' then
            redis.call('HSET', K_SCHED, qk, 'D')
            redis.call('HINCRBY', K_SCHED, 'c:' .. target, 1)
          end
        end
        pop_ready(target, info, work)
      else
        return
      end
    end
    if FAILED then return end
  end
end

local function member(node, visit) return RUN .. '|' .. node .. '|' .. visit end

-- queue the fired items: pending entries + a lease so a lost enqueue is redone by the reaper
local function queue_ready()
  for _, it in ipairs(READY) do
    redis.call('HSET', K_PENDING, it[1] .. '|' .. it[2], cjson.encode({s = it[3], st = 'q'}))
    redis.call('ZADD', K_LEASES, NOW_MS + QUEUED_MS, member(it[1], it[2]))
  end
  for _, n in ipairs(SKIPPED) do
    xadd(K_EVENTS, 'node_skipped', n, '{}')
    redis.call('HSETNX', K_NODES, n, '{"status":"skipped"}')
  end
end

local function run_key(run, part) return PREFIX .. ':run:' .. run .. ':' .. part end

-- set the final status of a run once, expire its keys, and tell a waiting parent run
local function finalize(status, err, event_type)
  redis.call('HSET', K_META, 'status', status, 'finished_at', NOW_S)
  if err then redis.call('HSET', K_META, 'error', err) end
  local data = '{}'
  if err then data = '{"error":' .. err .. '}' end
  local enode = ''
  if err then
    local decoded = cjson.decode(err)
    if type(decoded.node_id) == 'string' then enode = decoded.node_id end
  end
  xadd(K_EVENTS, event_type, enode, data)
  for _, f in ipairs(redis.call('HKEYS', K_PENDING)) do
    redis.call('ZREM', K_LEASES, RUN .. '|' .. f)
  end
  redis.call('DEL', K_PENDING)
  redis.call('XADD', K_DONE, '*', 's', status)
  local ttl = tonumber(redis.call('HGET', K_META, 'ttl') or TTL)
  for _, k in ipairs({K_META, K_STATE, K_SCHED, K_PARTIAL, K_XPEND, K_NODES, K_EVENTS, K_CHILDREN, K_DONE}) do
    redis.call('EXPIRE', k, ttl)
  end
  local parent = redis.call('HGET', K_META, 'parent')
  if not parent or parent == '' then return nil end
  local prun, pnode, pvisit = string.match(parent, '^(.*)|(.*)|(%d+)$')
  if redis.call('HGET', run_key(prun, 'meta'), 'status') ~= 'running' then return nil end
  local pk = run_key(prun, 'pending')
  local raw = redis.call('HGET', pk, pnode .. '|' .. pvisit)
  if not raw then return nil end
  local it = cjson.decode(raw)
  it.cw = (it.cw or 1) - 1
  if status ~= 'succeeded' then it.cf = RUN end
  local ready = nil
  if it.cw <= 0 then
    it.st = 'q'
    it.k = 'resume'
    redis.call('ZADD', K_LEASES, NOW_MS + QUEUED_MS, prun .. '|' .. pnode .. '|' .. pvisit)
    ready = {prun, pnode, tonumber(pvisit)}
  end
  redis.call('HSET', pk, pnode .. '|' .. pvisit, cjson.encode(it))
  return ready
end

local function maybe_finished()
  if FAILED then
    local err = cjson.encode({node_id = FAILED.node, attempt = 1, type = 'MaxVisitsExceeded',
      message = 'reached ' .. FAILED.visits .. ' visits, more than its max_visits=' .. FAILED.max ..
      '; raise config.max_visits or make the loop\'s exit condition reachable', traceback = ''})
    return finalize('failed', err, 'run_failed')
  end
  if tonumber(redis.call('HGET', K_SCHED, 'active') or '0') == 0 then
    return finalize('succeeded', nil, 'run_finished')
  end
  return nil
end

local function claim_one(node, visit, worker, deliveries)
  local f = node .. '|' .. visit
  local it = cjson.decode(redis.call('HGET', K_PENDING, f))
  it.st = 'r'
  it.w = worker
  it.dc = (it.dc or 0) + deliveries
  redis.call('HSET', K_PENDING, f, cjson.encode(it))
  redis.call('ZADD', K_LEASES, NOW_MS + LEASE_MS, member(node, visit))
  xadd(K_EVENTS, 'node_started', node, cjson.encode({visit = tonumber(visit), worker = worker,
       delivery = it.dc}))
  return it
end
"""

#: Create a run and queue its start nodes.
#: KEYS: the run keys (see module docstring); ARGV[7] blueprint digest, ARGV[8] blueprint id,
#: ARGV[9] parent link or '', ARGV[10] start nodes (JSON list), ARGV[11] bundle (JSON),
#: ARGV[12] event data (JSON), ARGV[13] parent children-set key or '', ARGV[14] input keys (JSON),
#: ARGV[15..] state k, v pairs. A child run whose parent has ended (failed, cancelled — e.g. its
#: root hit a limit of flownb.limits) is not created: returns 'parent-ended'.
START = _LIB + r"""
if redis.call('EXISTS', K_META) == 1 then return 'exists' end
if ARGV[9] ~= '' then
  local prun = string.match(ARGV[9], '^(.*)|[^|]*|%d+$')
  if prun and redis.call('HGET', run_key(prun, 'meta'), 'status') ~= 'running' then
    return 'parent-ended'
  end
end
redis.call('HSET', K_META, 'status', 'running', 'blueprint', ARGV[7], 'blueprint_id', ARGV[8],
           'created_at', NOW_S, 'parent', ARGV[9], 'bundle', ARGV[11], 'input_keys', ARGV[14], 'ttl', TTL)
for i = 15, #ARGV, 2 do redis.call('HSET', K_STATE, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', K_SCHED, 'active', 0)
redis.call('ZADD', K_RUNS, NOW_MS, RUN)
redis.call('ZREMRANGEBYSCORE', K_RUNS, '-inf', NOW_MS - 2000 * TTL)  -- runs long expired
if ARGV[13] ~= '' then redis.call('SADD', ARGV[13], RUN) end
xadd(K_EVENTS, 'run_started', '', ARGV[12])
for _, n in ipairs(cjson.decode(ARGV[10])) do fire(n, {}) end
queue_ready()
local out = {}
for _, it in ipairs(READY) do table.insert(out, {it[1], it[2]}) end
return cjson.encode(out)
"""

#: Claim a queued item for a worker (or take over one whose lease expired).
#: KEYS: the run keys; ARGV[7] node, ARGV[8] visit, ARGV[9] worker name.
#: Returns JSON {"r": "ok"|"stale"|"gone"|"busy"|"waiting"|"done", "item": {...}}.
CLAIM = _LIB + r"""
local status = redis.call('HGET', K_META, 'status')
if status ~= 'running' then return cjson.encode({r = 'stale', status = status or 'missing'}) end
local node, visit = ARGV[7], ARGV[8]
if redis.call('HEXISTS', K_SCHED, 'd:' .. node .. ':' .. visit) == 1 then
  return cjson.encode({r = 'done'})
end
local raw = redis.call('HGET', K_PENDING, node .. '|' .. visit)
if not raw then return cjson.encode({r = 'gone'}) end
local it = cjson.decode(raw)
if it.st == 'w' then
  if it.cr ~= 1 then return cjson.encode({r = 'waiting'}) end
  it.cr = nil
  redis.call('HSET', K_PENDING, node .. '|' .. visit, cjson.encode(it))
  redis.call('ZADD', K_LEASES, NOW_MS + LEASE_MS, member(node, visit))
  return cjson.encode({r = 'create', item = it})
end
if it.st == 'r' then
  local dl = redis.call('ZSCORE', K_LEASES, member(node, visit))
  if dl and tonumber(dl) > NOW_MS then return cjson.encode({r = 'busy'}) end
end
local claimed = claim_one(node, visit, ARGV[9], 1)
return cjson.encode({r = 'ok', item = claimed})
"""

#: Claim several queued items of one run for a worker in one call (a batch job's items).
#: KEYS: the run keys; ARGV[7] worker name, ARGV[8..] node, visit pairs.
#: Returns JSON [{"node", "visit", "r", "item"}, ...] like CLAIM for each.
CLAIM_MANY = _LIB + r"""
local status = redis.call('HGET', K_META, 'status')
if status ~= 'running' then return cjson.encode({}) end
local out = {}
for i = 8, #ARGV, 2 do
  local node, visit = ARGV[i], ARGV[i + 1]
  local res = {node = node, visit = tonumber(visit)}
  local raw = redis.call('HGET', K_PENDING, node .. '|' .. visit)
  if redis.call('HEXISTS', K_SCHED, 'd:' .. node .. ':' .. visit) == 1 then res.r = 'done'
  elseif not raw then res.r = 'gone'
  else
    local it = cjson.decode(raw)
    local dl = redis.call('ZSCORE', K_LEASES, member(node, visit))
    if it.st == 'w' then
      if it.cr == 1 then
        it.cr = nil
        redis.call('HSET', K_PENDING, node .. '|' .. visit, cjson.encode(it))
        redis.call('ZADD', K_LEASES, NOW_MS + LEASE_MS, member(node, visit))
        res.r = 'create'; res.item = it
      else res.r = 'waiting' end
    elseif it.st == 'r' and dl and tonumber(dl) > NOW_MS then res.r = 'busy'
    else res.r = 'ok'; res.item = claim_one(node, visit, ARGV[7], 1) end
  end
  table.insert(out, res)
end
return cjson.encode(out)
"""

#: Commit a finished node visit: output, state writes, stats, successors, joins, completion.
#: KEYS: the run keys; ARGV[7] node, ARGV[8] visit, ARGV[9] output (JSON), ARGV[10] taken edge
#: indices (JSON object idx -> true), ARGV[11] stats (JSON), ARGV[12] succeeded-event data (JSON),
#: ARGV[13] worker to claim a single successor inline ('' = none), ARGV[14] node named by the
#: node_succeeded event ('' = ARGV[7]; a fallback that took over), ARGV[15..] state k, v pairs.
#: Returns JSON {"r": "ok"|"dup"|"stale", "ready": [[node, visit]], "claimed": [node, visit, item],
#: "finished": status|nil, "parent": [run, node, visit]|nil}.
COMMIT = _LIB + r"""
local status = redis.call('HGET', K_META, 'status')
if status ~= 'running' then return cjson.encode({r = 'stale', status = status or 'missing'}) end
local node, visit = ARGV[7], ARGV[8]
if redis.call('HSETNX', K_SCHED, 'd:' .. node .. ':' .. visit, '1') == 0 then
  return cjson.encode({r = 'dup'})
end
redis.call('HSET', K_STATE, '_outputs.' .. node, ARGV[9])
for i = 15, #ARGV, 2 do redis.call('HSET', K_STATE, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', K_NODES, node, ARGV[11])
redis.call('HDEL', K_PENDING, node .. '|' .. visit)
redis.call('ZREM', K_LEASES, member(node, visit))
local event_node = node
if ARGV[14] ~= '' then event_node = ARGV[14] end
xadd(K_EVENTS, 'node_succeeded', event_node, ARGV[12])
redis.call('HINCRBY', K_SCHED, 'active', -1)
local info = ginfo(node)
if info.s >= 0 then redis.call('HINCRBY', K_SCHED, 'a:' .. info.s, -1) end
local work = {}
resolve_out(node, cjson.decode(ARGV[10]), work)
if not FAILED then drain(work) end
local result = {r = 'ok', ready = {}}
if not FAILED then
  queue_ready()
  if ARGV[13] ~= '' and #READY == 1 then
    local it = READY[1]
    result.claimed = {it[1], it[2], claim_one(it[1], it[2], ARGV[13], 1)}
  else
    for _, it in ipairs(READY) do table.insert(result.ready, {it[1], it[2]}) end
  end
end
local parent = maybe_finished()
result.finished = redis.call('HGET', K_META, 'status') ~= 'running' and
                  redis.call('HGET', K_META, 'status') or nil
result.parent = parent
return cjson.encode(result)
"""

#: A node failed for good (or a run-level error): fail the run once.
#: KEYS: the run keys; ARGV[7] node, ARGV[8] error (JSON), ARGV[9] stats (JSON) or '',
#: ARGV[10] node_failed event data (JSON) or ''.
FAIL = _LIB + r"""
local status = redis.call('HGET', K_META, 'status')
if status ~= 'running' then return cjson.encode({r = 'stale', status = status or 'missing'}) end
if ARGV[9] ~= '' then redis.call('HSET', K_NODES, ARGV[7], ARGV[9]) end
if ARGV[10] ~= '' then xadd(K_EVENTS, 'node_failed', ARGV[7], ARGV[10]) end
local parent = finalize('failed', ARGV[8], 'run_failed')
return cjson.encode({r = 'ok', parent = parent})
"""

#: Cancel a run and, recursively, its child runs.
#: KEYS: the run keys. Returns the number of runs cancelled.
CANCEL = _LIB + r"""
local function cancel(run, meta, pending, children)
  if redis.call('HGET', meta, 'status') ~= 'running' then return 0 end
  local n = 1
  for _, child in ipairs(redis.call('SMEMBERS', children)) do
    n = n + cancel(child, run_key(child, 'meta'), run_key(child, 'pending'), run_key(child, 'children'))
  end
  redis.call('HSET', meta, 'status', 'cancelled', 'finished_at', NOW_S)
  xadd(run_key(run, 'events'), 'run_cancelled', '', '{}')
  redis.call('XADD', run_key(run, 'done'), '*', 's', 'cancelled')
  for _, f in ipairs(redis.call('HKEYS', pending)) do redis.call('ZREM', K_LEASES, run .. '|' .. f) end
  redis.call('DEL', pending)
  local ttl = tonumber(redis.call('HGET', meta, 'ttl') or TTL)
  for _, part in ipairs({'meta', 'state', 'sched', 'partial', 'xpend', 'nodes', 'events', 'children', 'done'}) do
    redis.call('EXPIRE', run_key(run, part), ttl)
  end
  return n
end
return cancel(RUN, K_META, K_PENDING, K_CHILDREN)
"""

#: Mark a structural item (subflow/map) as waiting for ARGV[9] child runs. Its lease stays until
#: the worker has started every child (then it drops it), so a crash while creating children is
#: retried by the reaper (CLAIM answers 'create') and child creation is idempotent.
#: KEYS: the run keys; ARGV[7] node, ARGV[8] visit, ARGV[9] number of children, ARGV[10] child ids JSON.
WAIT_CHILDREN = _LIB + r"""
if redis.call('HGET', K_META, 'status') ~= 'running' then return 'stale' end
local f = ARGV[7] .. '|' .. ARGV[8]
local raw = redis.call('HGET', K_PENDING, f)
if not raw then return 'gone' end
local it = cjson.decode(raw)
if it.st == 'w' or it.k == 'resume' then return 'already' end
it.st = 'w'
it.cw = tonumber(ARGV[9])
it.ch = cjson.decode(ARGV[10])
redis.call('HSET', K_PENDING, f, cjson.encode(it))
return 'ok'
"""

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
#: limit (flownb.limits): atomic, so workers starting children at once cannot overshoot; a retried
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

ALL = {"START": START, "CLAIM": CLAIM, "CLAIM_MANY": CLAIM_MANY, "COMMIT": COMMIT, "FAIL": FAIL, "CANCEL": CANCEL,
       "WAIT_CHILDREN": WAIT_CHILDREN, "REQUEUE": REQUEUE, "RENEW": RENEW,
       "RESERVE_CHILDREN": RESERVE_CHILDREN}


#: LLM rate limit: GCRA over requests and tokens in one bucket, a line-by-line port of
#: flownb.llm.ratelimit.gcra (the in-memory twin), on Redis server time so every worker agrees.
#: KEYS[1] the bucket hash (``{p}:llm:rate:<bucket>``: r / t request and token TATs, b blocked
#: until; epoch seconds).
#: ARGV[1] "reserve": ARGV[2] rpm (0 = none), ARGV[3] tpm (0 = none), ARGV[4] burst,
#:         ARGV[5] tokens of this call. Returns the seconds to wait as a string, "0" = granted
#:         (and charged; a refused call charges nothing).
#: ARGV[1] "backoff": ARGV[2] seconds nothing is granted (a 429's Retry-After). Returns "0".
RATE_LIMIT = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local h = redis.call('HMGET', KEYS[1], 'r', 't', 'b')
local tr = tonumber(h[1]) or 0
local tt = tonumber(h[2]) or 0
local bu = tonumber(h[3]) or 0
local function keep(latest)
  redis.call('PEXPIRE', KEYS[1], math.ceil((latest - now + 60) * 1000))
end
if ARGV[1] == 'backoff' then
  local till = now + tonumber(ARGV[2])
  if till > bu then
    bu = till
    redis.call('HSET', KEYS[1], 'b', string.format('%.6f', bu))
  end
  keep(math.max(bu, tr, tt))
  return '0'
end
local rpm, tpm = tonumber(ARGV[2]), tonumber(ARGV[3])
local burst, tokens = math.max(1, tonumber(ARGV[4])), math.max(0, tonumber(ARGV[5]))
local wait = math.max(0, bu - now)
local nr, nt = tr, tt
if rpm > 0 then
  local interval = 60 / rpm
  local base = math.max(tr, now)
  wait = math.max(wait, base - (burst - 1) * interval - now)
  nr = base + interval
end
if tpm > 0 then
  local cost = math.min(60, tokens * 60 / tpm)
  local base = math.max(tt, now)
  wait = math.max(wait, base + cost - 60 - now)
  nt = base + cost
end
if wait > 0 then
  return string.format('%.6f', wait)
end
redis.call('HSET', KEYS[1], 'r', string.format('%.6f', nr), 't', string.format('%.6f', nt))
keep(math.max(nr, nt, bu))
return '0'
"""
