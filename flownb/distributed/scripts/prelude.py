"""The Lua prelude (``_LIB``) every run-level script starts with.

Its first half (:mod:`.prelude_base`: keys, events, graph, reducers, blueprint references) plus,
here, the join algorithm of :mod:`flownb.engine.scheduler` line for line (fire, deliver, drain,
queueing) and finalisation (status, events, expiry, waking a parent run). See
:mod:`flownb.distributed.scripts` for what every script guarantees.
"""

from __future__ import annotations

from .prelude_base import _BASE

_JOIN = r"""
local function fire(node, sources)
  local info = ginfo(node)
  local v = AHEAD and AHEAD[node]
  if v then v = v + 1; AHEAD[node] = v else v = redis.call('HINCRBY', K_SCHED, 'v:' .. node, 1) end
  if v > info.m then
    FAILED = {node = node, visits = v, max = info.m}
    return
  end
  if DEFER_ACTIVE then ACTIVE = ACTIVE + 1 else ACTIVE = redis.call('HINCRBY', K_SCHED, 'active', 1) end
  if info.s >= 0 then redis.call('HINCRBY', K_SCHED, 'a:' .. info.s, 1) end
  READY[#READY + 1] = {node, v, sources}
end

local skip, pop_ready

-- (``taken``: the taken edges' indices, as numbers, -> true)
local function resolve_out(node, taken, work)
  local o = _out[node] or gout(node)  -- (gout is cold: COMMIT read its own node's)
  for k = 1, #o do
    local e = o[k]
    local t = taken[e[1]] == true
    if e[3] == 1 then
      if t then fire(e[2], {node}) end
    elseif e[3] == 2 then
      local key = 'xr:' .. e[1]
      if t then redis.call('HSET', K_SCHED, key, 'T') else redis.call('HSETNX', K_SCHED, key, 'D') end
      redis.call('SADD', K_XPEND, ginfo(node).s)
    else
      work[#work + 1] = {e[2], e[4], t, node}
    end
  end
end

-- an arrival at a join (``info``: its join info) that was not read ahead (drain delivers the
-- rest itself: an arrival at a single-input node fires or skips it; cold, assemble.COLD)
local function deliver_join(target, pos, t, source, work, info)
  local qk = 'q:' .. target .. ':' .. pos
  local q = redis.call('HGET', K_SCHED, qk) or ''
  if t and info.j == 'any' then
    local gen = tonumber(redis.call('HGET', K_SCHED, 'g:' .. target) or '0') + string.len(q)
    if redis.call('HSETNX', K_SCHED, 'f:' .. target .. ':' .. gen, '1') == 1 then
      fire(target, {source})
    end
  end
  -- c: the join's non-empty slots, known from HINCRBY when this arrival fills an empty one;
  -- a join is in the partial set exactly while c > 0, so only the first arrival adds it
  local c = nil
  if q == '' then c = redis.call('HINCRBY', K_SCHED, 'c:' .. target, 1) end
  redis.call('HSET', K_SCHED, qk, q .. (t and 'T' or 'D'))
  if c == 1 then redis.call('SADD', K_PARTIAL, target) end
  pop_ready(target, info, work, c)
end

pop_ready = function(target, info, work, c)
  while (c or tonumber(redis.call('HGET', K_SCHED, 'c:' .. target) or '0')) == info.n do
    local gen = tonumber(redis.call('HGET', K_SCHED, 'g:' .. target) or '0')
    redis.call('HSET', K_SCHED, 'g:' .. target, gen + 1)
    local srcs, nonempty = {}, 0
    local names = cjson.decode(redis.call('HGET', K_GRAPH, 'src:' .. target))
    -- every slot's queue in a few commands, not two per slot (a 500-wide join: 3, not 1,000)
    local qks, gone, kept = {}, {}, {}
    for p = 0, info.n - 1 do qks[p + 1] = 'q:' .. target .. ':' .. p end
    local qs = {}
    for i = 1, #qks, 400 do
      local part = redis.call('HMGET', K_SCHED, unpack(qks, i, math.min(i + 399, #qks)))
      for j = 1, #part do qs[i + j - 1] = part[j] end
    end
    for p = 0, info.n - 1 do
      local q = qs[p + 1] or 'D'
      local rest = string.sub(q, 2)
      if rest == '' then table.insert(gone, qks[p + 1])
      else table.insert(kept, qks[p + 1]); table.insert(kept, rest); nonempty = nonempty + 1 end
      if string.sub(q, 1, 1) == 'T' then table.insert(srcs, names[p + 1]) end
    end
    for i = 1, #gone, 400 do redis.call('HDEL', K_SCHED, unpack(gone, i, math.min(i + 399, #gone))) end
    if #kept > 0 then hset_all(K_SCHED, kept) end
    redis.call('HSET', K_SCHED, 'c:' .. target, nonempty)
    c = nonempty
    if info.j == 'all' then
      if #srcs > 0 then fire(target, srcs) else skip(target, work) end
    else
      if redis.call('HDEL', K_SCHED, 'f:' .. target .. ':' .. gen) == 0 then skip(target, work) end
    end
  end
  if (c or tonumber(redis.call('HGET', K_SCHED, 'c:' .. target) or '0')) == 0 then
    redis.call('SREM', K_PARTIAL, target)
  end
end

skip = function(target, work)
  SKIPPED = SKIPPED or {}
  SKIPPED[#SKIPPED + 1] = target
  resolve_out(target, {}, work)
end

local function drain(work)
  local guard = 0
  while true do
    local head = 1
    while head <= #work do
      local w = work[head]
      local target, t = w[1], w[3]
      local info = ginfo(target)
      if info.n == 1 then
        if t then fire(target, {w[4]}) else skip(target, work) end
      elseif not (AHEAD_DELIVER and AHEAD_DELIVER(target, w[2], t)) then
        deliver_join(target, w[2], t, w[4], work, info)
      end
      head = head + 1
      guard = guard + 1
      if guard > 1000000 then BROKEN = 'scheduling did not converge'; return end
    end
    for k = #work, 1, -1 do work[k] = nil end  -- (emptied, not made again)
    -- (no loops: no table, sort closure or iterator made for nothing; callgrind)
    local pend = LOOPS and redis.call('SMEMBERS', K_XPEND) or work
    if #pend > 1 then table.sort(pend, function(a, b) return tonumber(a) < tonumber(b) end) end
    for k = 1, #pend do
      local s = pend[k]
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
      local active = ACTIVE or tonumber(redis.call('HGET', K_SCHED, 'active') or '0')
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

-- queue the fired items: pending entries + a lease so a lost enqueue is redone by the reaper.
-- With ``worker`` (a single fired item), it is stored claimed by that worker at once, as
-- ``claim_one`` would (no queued state to write and read back): returns that item's JSON.
-- (``merged``: that item's node_started rides on the caller's entry already)
-- The item's JSON is made here, its numbers as '%d' text: cjson and Lua's own conversion format
-- every number as a float (printf's %.14g, ~2k instructions each; callgrind).
local function queue_ready(worker, merged, wj)
  local claimed = nil
  -- skips first: the events read as in process (b succeeded, its untaken branch skipped, then
  -- the successor this commit claims inline starts)
  for k = 1, SKIPPED and #SKIPPED or 0 do
    local n = SKIPPED[k]
    xadd(K_EVENTS, 'node_skipped', n, '{}')
    redis.call('HSETNX', K_STATE, '_outputs:' .. n, '{"status":"skipped"}')
  end
  local head = ',"fs":' .. SEQ_S
  wj = wj or (worker and cjson.encode(worker))  -- (the caller's encoding of it, when made)
  for k = 1, #READY do
    local it = READY[k]
    local vs = it[4] or string.format('%d', it[2])  -- (it[4]: the visit as text, when made already)
    local item, ttl
    if worker then
      item = '{"s":' .. cjson.encode(it[3]) .. ',"st":"r"' .. head .. ',"w":' .. wj .. ',"dc":1}'
      ttl, claimed = LEASE_MS, item
    else
      item, ttl = '{"s":' .. cjson.encode(it[3]) .. ',"st":"q"' .. head .. '}', QUEUED_MS
    end
    redis.call('HSET', K_PENDING, it[1] .. '|' .. vs, item)
    redis.call('ZADD', K_LEASES, string.format('%d', NOW_MS + ttl), RUN .. '|' .. it[1] .. '|' .. vs)  -- (member)
    if worker and not merged then
      xadd(K_EVENTS, 'node_started', it[1], '{"visit":' .. vs .. ',"worker":' .. wj .. ',"delivery":1}')
    end
  end
  return claimed
end

local function run_key(run, part) return PREFIX .. ':run:' .. run .. ':' .. part end

-- time travel: ARGV[from..] state k, v pairs (v already JSON) as one JSON object, for the
-- run's history stream (flownb.engine.history)
local function json_pairs(from)
  local parts = {}
  for i = from, #ARGV, 2 do table.insert(parts, cjson.encode(ARGV[i]) .. ':' .. ARGV[i + 1]) end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- time travel: COMMIT's checked writes ({key, JSON value, ...}, after reducers) as one JSON
-- object: the history keeps the values the state took, so a replay sets them as they are
local function json_writes(writes)
  local parts = {}
  for _, w in ipairs(writes) do table.insert(parts, cjson.encode(w[1]) .. ':' .. w[2]) end
  return '{' .. table.concat(parts, ',') .. '}'
end

-- The run's status lives in its meta (what every reader reads) and, for COMMIT, in its sched hash
-- too ('st'; the pause flag as 'pz', the history flag as 'hy'): COMMIT reads them with its
-- scheduling fields, one command less per node. Every change of the status goes through here so
-- the two never disagree (tests/test_scripts_prelude.py checks no script writes it otherwise).
-- A run started before the copy existed has no 'st': its first change copies the pause and
-- history flags too, or COMMIT would read them as off once 'st' is there (a history run waiting
-- for a person across an upgrade would stop recording).
local function set_status(meta, sched, status, ...)
  if redis.call('HEXISTS', sched, 'st') == 0 then
    local mf = redis.call('HMGET', meta, 'paused', 'history')
    if mf[1] == '1' then redis.call('HSET', sched, 'pz', '1') end
    if mf[2] == '1' then redis.call('HSET', sched, 'hy', '1') end
  end
  redis.call('HSET', meta, 'status', status, ...)
  redis.call('HSET', sched, 'st', status)
end

-- human in the loop (flownb.engine.waiting): when every active visit waits for a person, the run is
-- parked: status 'waiting', run_waiting, and a done entry so waiters return (RESUME deletes it)
-- (``held``: the 'h' count when the caller read it already)
local function maybe_waiting(held)
  held = tonumber(held or redis.call('HGET', K_SCHED, 'h') or '0')
  if held > 0 and held == (ACTIVE or tonumber(redis.call('HGET', K_SCHED, 'active') or '0'))
     and redis.call('HGET', K_META, 'status') == 'running' then
    set_status(K_META, K_SCHED, 'waiting')
    STATUS = 'waiting'
    xadd(K_EVENTS, 'run_waiting', '', '{}')
    redis.call('RPUSH', K_DONE, 'waiting')
  end
end

-- set the final status of a run once, expire its keys, and tell a waiting parent run
local function finalize(status, err, event_type)
  set_status(K_META, K_SCHED, status, 'finished_at', NOW_S)
  STATUS = status
  if err then redis.call('HSET', K_META, 'error', err) end
  local ttl = tonumber(redis.call('HGET', K_META, 'ttl') or TTL)
  release_blueprints(K_META, ttl)
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
  redis.call('RPUSH', K_DONE, status)  -- a list of one: see RedisStore.wait_done
  -- the RQ job of each queued item: read only while an item waits (the reaper), none does now
  redis.call('DEL', run_key(RUN, 'jobs'))
  for _, part in ipairs({'meta', 'state', 'sched', 'partial', 'xpend', 'nodes', 'events', 'children', 'done',
                         'history'}) do
    expire_run_key(run_key(RUN, part), part, ttl)
  end
  local parent = redis.call('HGET', K_META, 'parent')
  if not parent or parent == '' then return nil end
  local prun, pnode, pvisit = string.match(parent, '^(.*)|(.*)|(%d+)$')
  if redis.call('HGET', run_key(prun, 'meta'), 'status') ~= 'running' then return nil end
  -- O(1) per child: a counter on the parent, the pending item touched only by the last child
  local pf = pnode .. '|' .. pvisit
  local psched = run_key(prun, 'sched')
  if status ~= 'succeeded' then redis.call('HSETNX', psched, 'cf:' .. pf, RUN) end
  if redis.call('HINCRBY', psched, 'cw:' .. pf, -1) > 0 then return nil end
  local pk = run_key(prun, 'pending')
  local raw = redis.call('HGET', pk, pf)
  if not raw then return nil end
  local it = cjson.decode(raw)
  it.cw = 0
  it.st = 'q'
  it.k = 'resume'
  redis.call('ZADD', K_LEASES, NOW_MS + QUEUED_MS, prun .. '|' .. pf)
  redis.call('HSET', pk, pf, cjson.encode(it))
  return {prun, pnode, tonumber(pvisit)}
end

-- the run cannot go on (its graph is gone or broken): fail it with a message naming the cause
local function graph_message(what)
  local bid = redis.call('HGET', K_META, 'blueprint_id') or '?'
  return 'the compiled graph of blueprint \'' .. bid .. '\' ' .. what ..
         '; the run cannot continue: submit it again'
end
local function fail_broken(node, msg)
  local err = cjson.encode({node_id = node, run_id = RUN, attempt = 1, type = 'ExecutorError',
                            message = msg, traceback = ''})
  return finalize('failed', err, 'run_failed'), msg
end

local function maybe_finished(held)
  if BROKEN then
    local parent = fail_broken(nil, 'the run cannot continue: ' .. BROKEN)
    return parent
  end
  if FAILED then
    local err = cjson.encode({node_id = FAILED.node, attempt = 1, type = 'MaxVisitsExceeded',
      message = 'reached ' .. FAILED.visits .. ' visits, more than its max_visits=' .. FAILED.max ..
      '; raise config.max_visits or make the loop\'s exit condition reachable', traceback = ''})
    return finalize('failed', err, 'run_failed')
  end
  if (ACTIVE or tonumber(redis.call('HGET', K_SCHED, 'active') or '0')) == 0 then
    return finalize('succeeded', nil, 'run_finished')
  end
  if held ~= '0' then maybe_waiting(held) end  -- (none held: nothing waits; cold, assemble.COLD)
  return nil
end

-- (``it``: the item, when the caller decoded it already). Returns the item and its JSON as
-- stored: callers answer with that text, not a second encoding (and the event's numbers are
-- '%d' text: see queue_ready)
local function claim_one(node, visit, worker, deliveries, it)
  local f = node .. '|' .. visit
  it = it or cjson.decode(redis.call('HGET', K_PENDING, f))
  it.st = 'r'
  it.w = worker
  it.dc = (it.dc or 0) + deliveries
  local json = cjson.encode(it)
  redis.call('HSET', K_PENDING, f, json)
  redis.call('ZADD', K_LEASES, string.format('%d', NOW_MS + LEASE_MS), member(node, visit))
  xadd(K_EVENTS, 'node_started', node, '{"visit":' .. string.format('%d', visit) .. ',"worker":' ..
       cjson.encode(worker) .. ',"delivery":' .. string.format('%d', it.dc) .. '}')
  return it, json
end

-- run controls (flownb.distributed.controls): while the run is paused (meta 'paused'), an item is
-- parked instead of claimed: st 'p', no lease, so no worker holds it; RESUME_RUN re-queues it
-- (it: the item, as the claim already read it; paused: the pause flag, when the claim read it)
local function park_paused(node, visit, it, paused)
  if paused == nil then paused = redis.call('HGET', K_META, 'paused') == '1' end
  if not paused then return false end
  local f = node .. '|' .. visit
  it.st = 'p'
  it.w = nil
  redis.call('HSET', K_PENDING, f, cjson.encode(it))
  redis.call('ZREM', K_LEASES, member(node, visit))
  return true
end
"""

_LIB = _BASE + _JOIN
