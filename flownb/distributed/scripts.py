"""The Lua scripts that make every scheduling step atomic on Redis.

Each script is a named constant. All run-level scripts take the same KEYS, in this order
(``Keys.run_keys``)::

    KEYS[1] meta     KEYS[2] state    KEYS[3] sched    KEYS[4] pending   KEYS[5] partial
    KEYS[6] xpend    KEYS[7] nodes    KEYS[8] events   KEYS[9] children  KEYS[10] graph
    KEYS[11] leases  KEYS[12] runs index  KEYS[13] done (one-entry stream waiters block on)
    KEYS[14] blueprint references (``{p}:bprefs``: digest -> number of active runs using it)

``_LIB`` is the shared prelude: the join algorithm of :mod:`flownb.engine.scheduler`, line for line
(dead-path elimination with FIFO slots, loop exits delivered when the loop is quiet, and the
end-of-run sweep), plus finalisation (status, events, expiry, waking a parent run). Everything a
crash could split — writing the output, marking the visit done, counting arrivals at joins,
queueing successors, publishing completion — happens inside one script call, so it is all or
nothing, and the ``d:<node>:<visit>`` done marker makes a redelivered commit a no-op.

Time comes from ``TIME`` inside the script (Redis >= 5 replicates script effects), so deadlines
do not depend on the clocks of the worker machines.

**Nothing is written unless the script can finish.** Redis does not roll a script back when it
raises half-way, so every script checks every key it will need *before* its first write: the
run's meta, and the compiled graph (``graph_problem``: the graph hash stores its own field count,
``hlen``, so one ``HLEN`` proves no field is missing). A run whose graph is gone is failed by the
script itself, with a message saying why — never a done marker with nothing queued.

**Keys live as long as the run.** Per-run keys get no TTL while the run is active and all get
the same TTL when it ends (``finalize`` / ``CANCEL``). The blueprints a run uses (its own and its
subflow bundle) are shared between runs, so they are reference-counted in ``{p}:bprefs``: ``START``
takes a reference and removes any TTL, the end of the run drops it, and the last run to end sets
the blueprint's TTL (twice the result TTL, so a finished run's result can still name its nodes).

**Per-item work is O(1).** A ``map`` over n items starts n child runs; the parent's countdown is
one ``HINCRBY`` on the parent's ``cw:<node>|<visit>`` field and the child ids are stored once, in
``ch:<node>|<visit>`` — never inside the pending item that every child would otherwise decode and
re-encode (that made a 50,000-item map quadratic). Child runs are not in the runs index.
"""

from __future__ import annotations

_LIB = r"""
local K_META, K_STATE, K_SCHED, K_PENDING, K_PARTIAL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_XPEND, K_NODES, K_EVENTS, K_CHILDREN, K_GRAPH = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_LEASES, K_RUNS, K_DONE, K_BPREFS = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local RUN, PREFIX = ARGV[1], ARGV[2]
local MAXLEN, TTL = tonumber(ARGV[3]), tonumber(ARGV[4])
local QUEUED_MS, LEASE_MS = tonumber(ARGV[5]), tonumber(ARGV[6])
local _t = redis.call('TIME')
local NOW_MS = tonumber(_t[1]) * 1000 + math.floor(tonumber(_t[2]) / 1000)
local NOW_S = string.format('%d.%06d', _t[1], _t[2])

local function xadd(key, typ, node, data)
  return redis.call('XADD', key, 'MAXLEN', '~', MAXLEN, '*', 't', typ, 'n', node or '', 'ts', NOW_S,
             'd', data or '{}')
end

-- What makes a visit's pending item takeable, checked before any write by every script that
-- takes one up (CLAIM, PARK): the run is running, the visit is not done, the item exists.
-- Returns the item's JSON, or nil and the encoded refusal.
local function pending_item(node, visit)
  local status = redis.call('HGET', K_META, 'status')
  if status ~= 'running' then return nil, cjson.encode({r = 'stale', status = status or 'missing'}) end
  if redis.call('HEXISTS', K_SCHED, 'd:' .. node .. ':' .. visit) == 1 then
    return nil, cjson.encode({r = 'done'})
  end
  local raw = redis.call('HGET', K_PENDING, node .. '|' .. visit)
  if not raw then return nil, cjson.encode({r = 'gone'}) end
  return raw
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

local READY, SKIPPED, FAILED, BROKEN = {}, {}, nil, nil
local SEQ = 0  -- this commit's number (flownb.core.reducers): items fired now remember it as 'fs'

-- why the run's compiled graph cannot be used (nil when it is complete)
local function graph_problem()
  local want = redis.call('HGET', K_GRAPH, 'hlen')
  if not want then return 'is not in Redis (expired, evicted or deleted)' end
  if redis.call('HLEN', K_GRAPH) ~= tonumber(want) then
    return 'is incomplete in Redis (' .. redis.call('HLEN', K_GRAPH) .. ' of ' .. want .. ' fields)'
  end
  return nil
end

local function bp_key(digest) return PREFIX .. ':bp:' .. digest end

-- == state reducers (flownb.core.reducers, on JSON text so values keep their exact encoding) ==
local function json_type(t)  -- Python's type name of the JSON value t
  local c = string.sub(t, 1, 1)
  if c == '{' then return 'dict' elseif c == '[' then return 'list' elseif c == '"' then return 'str'
  elseif c == 't' or c == 'f' then return 'bool' elseif c == 'n' then return 'NoneType'
  elseif string.find(t, '[%.eE]') then return 'float' end
  return 'int'
end

local function skip_string(t, i)  -- t[i] is '"'; the index after the closing quote
  local j = i + 1
  while true do
    local k = string.find(t, '["\\]', j)
    if string.sub(t, k, k) == '"' then return k + 1 end
    j = k + 2
  end
end

local function skip_value(t, i)  -- the index after the JSON value starting at i (no whitespace)
  local c = string.sub(t, i, i)
  if c == '"' then return skip_string(t, i) end
  if c ~= '{' and c ~= '[' then return (string.find(t, '[,}%]]', i) or (#t + 1)) end
  local depth, j = 0, i
  while true do
    local k = string.find(t, '["{}%[%]]', j)
    local ch = string.sub(t, k, k)
    if ch == '"' then j = skip_string(t, k)
    else
      if ch == '{' or ch == '[' then depth = depth + 1 else depth = depth - 1 end
      j = k + 1
      if depth == 0 then return j end
    end
  end
end

local function split_object(t)  -- {{key_json, value_json}, ...} of a JSON object's members
  local out, i = {}, 2
  if string.sub(t, 2, 2) == '}' then return out end
  while true do
    local ke = skip_string(t, i)
    local ve = skip_value(t, ke + 1)
    table.insert(out, {string.sub(t, i, ke - 1), string.sub(t, ke + 1, ve - 1)})
    if string.sub(t, ve, ve) == '}' then return out end
    i = ve + 1
  end
end

local function is_number(t)
  local ty = json_type(t)
  return ty == 'int' or ty == 'float'
end

-- the new JSON text of state key k under reducer red, or nil and the error message
local function reduce_text(k, red, old, new)
  local q = "'" .. k .. "'"
  if red == 'append' then
    old = old or '[]'
    if json_type(old) ~= 'list' then
      return nil, 'state key ' .. q .. " has reducer 'append' but holds a " .. json_type(old) .. ', not a list'
    end
    local items = new
    if json_type(new) == 'list' then items = string.sub(new, 2, -2) end
    if items == '' then return old end
    if old == '[]' then return '[' .. items .. ']' end
    return string.sub(old, 1, -2) .. ',' .. items .. ']'
  elseif red == 'merge' then
    old = old or '{}'
    if json_type(old) ~= 'dict' or json_type(new) ~= 'dict' then
      local bad = json_type(old) ~= 'dict' and old or new
      return nil, 'state key ' .. q .. " has reducer 'merge', which needs mappings; got a " .. json_type(bad)
    end
    local members, pos = split_object(old), {}
    for idx, m in ipairs(members) do pos[cjson.decode(m[1])] = idx end
    for _, m in ipairs(split_object(new)) do
      local idx = pos[cjson.decode(m[1])]
      if idx then members[idx][2] = m[2] else table.insert(members, m) end
    end
    local parts = {}
    for _, m in ipairs(members) do table.insert(parts, m[1] .. ':' .. m[2]) end
    return '{' .. table.concat(parts, ',') .. '}'
  elseif red == 'sum' then
    old = old or '0'
    if not is_number(old) or not is_number(new) then
      local bad = not is_number(old) and old or new
      return nil, 'state key ' .. q .. " has reducer 'sum', which needs numbers; got a " .. json_type(bad)
    end
    local total = tonumber(old) + tonumber(new)
    if json_type(old) == 'int' and json_type(new) == 'int' then return string.format('%d', total) end
    return string.format('%.17g', total)
  end
  return new
end

local function conflict_message(k, node, other)
  return "state key '" .. k .. "' was written by node '" .. node .. "' and by node '" .. other ..
         "', which ran at the same time: one write would be lost. Declare how to combine them " ..
         'in the blueprint, e.g. "reducers": {"' .. k .. '": "append"} (or merge, sum, replace)'
end

-- the blueprint digests a run uses: its own and its subflow bundle's
local function run_digests(digest, bundle_json)
  local ds = {}
  if digest and digest ~= '' then ds[digest] = true end
  if bundle_json and bundle_json ~= '' then
    for _, d in pairs(cjson.decode(bundle_json)) do ds[d] = true end
  end
  return ds
end

-- an active run holds its blueprints: no TTL while any run uses them
local function hold_blueprints(ds)
  for d in pairs(ds) do
    redis.call('HINCRBY', K_BPREFS, d, 1)
    redis.call('PERSIST', bp_key(d))
  end
end

-- the run ended: drop its references; the last one gives the blueprint its TTL
local function release_blueprints(meta, ttl)
  local ds = run_digests(redis.call('HGET', meta, 'blueprint'), redis.call('HGET', meta, 'bundle'))
  for d in pairs(ds) do
    if redis.call('HINCRBY', K_BPREFS, d, -1) <= 0 then
      redis.call('HDEL', K_BPREFS, d)
      redis.call('EXPIRE', bp_key(d), 2 * ttl)
    end
  end
end

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
      if guard > 1000000 then BROKEN = 'scheduling did not converge'; return end
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
    redis.call('HSET', K_PENDING, it[1] .. '|' .. it[2], cjson.encode({s = it[3], st = 'q', fs = SEQ}))
    redis.call('ZADD', K_LEASES, NOW_MS + QUEUED_MS, member(it[1], it[2]))
  end
  for _, n in ipairs(SKIPPED) do
    xadd(K_EVENTS, 'node_skipped', n, '{}')
    redis.call('HSETNX', K_NODES, n, '{"status":"skipped"}')
  end
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

-- human in the loop (flownb.engine.waiting): when every active visit waits for a person, the run is
-- parked: status 'waiting', run_waiting, and a done entry so waiters return (RESUME deletes it)
local function maybe_waiting()
  local held = tonumber(redis.call('HGET', K_SCHED, 'h') or '0')
  if held > 0 and held == tonumber(redis.call('HGET', K_SCHED, 'active') or '0')
     and redis.call('HGET', K_META, 'status') == 'running' then
    redis.call('HSET', K_META, 'status', 'waiting')
    xadd(K_EVENTS, 'run_waiting', '', '{}')
    redis.call('XADD', K_DONE, '*', 's', 'waiting')
  end
end

-- set the final status of a run once, expire its keys, and tell a waiting parent run
local function finalize(status, err, event_type)
  redis.call('HSET', K_META, 'status', status, 'finished_at', NOW_S)
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
  redis.call('XADD', K_DONE, '*', 's', status)
  for _, k in ipairs({K_META, K_STATE, K_SCHED, K_PARTIAL, K_XPEND, K_NODES, K_EVENTS, K_CHILDREN, K_DONE,
                      run_key(RUN, 'jobs'), run_key(RUN, 'history')}) do
    redis.call('EXPIRE', k, ttl)
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

local function maybe_finished()
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
  if tonumber(redis.call('HGET', K_SCHED, 'active') or '0') == 0 then
    return finalize('succeeded', nil, 'run_finished')
  end
  maybe_waiting()
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
#: ARGV[15..] state k, v pairs.
#: Returns 'exists'; 'parent-ended' for a child run whose parent has ended (failed, cancelled —
#: e.g. its root hit a limit of flownb.core.limits); JSON {"err": why} when the graph or a bundle
#: blueprint is missing; in all three nothing is written. Else the JSON list of queued [node, visit].
START = _LIB + r"""
if redis.call('EXISTS', K_META) == 1 then return 'exists' end
local problem = graph_problem()
local starts = cjson.decode(ARGV[10])
if problem then problem = 'the compiled graph of blueprint ' .. ARGV[8] .. ' ' .. problem end
for _, n in ipairs(starts) do
  if not problem and redis.call('HEXISTS', K_GRAPH, 'i:' .. n) == 0 then
    problem = 'the compiled graph of blueprint ' .. ARGV[8] .. ' has no start node ' .. n
  end
end
local digests = run_digests(ARGV[7], ARGV[11])
for d in pairs(digests) do
  if not problem and redis.call('EXISTS', bp_key(d)) == 0 then
    problem = 'blueprint ' .. d .. ' of its subflow bundle is not in Redis (expired or deleted)'
  end
end
local is_child = ARGV[9] ~= ''
if is_child then
  local prun = string.match(ARGV[9], '^(.*)|[^|]*|%d+$')
  if prun and redis.call('HGET', run_key(prun, 'meta'), 'status') ~= 'running' then
    return 'parent-ended'
  end
end
if problem then return cjson.encode({err = problem, code = 'graph'}) end
hold_blueprints(digests)
redis.call('HSET', K_META, 'status', 'running', 'blueprint', ARGV[7], 'blueprint_id', ARGV[8],
           'created_at', NOW_S, 'parent', ARGV[9], 'bundle', ARGV[11], 'input_keys', ARGV[14], 'ttl', TTL)
for i = 15, #ARGV, 2 do redis.call('HSET', K_STATE, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', K_SCHED, 'active', 0)
if not is_child then  -- child runs are reached through their parent, not listed
  redis.call('ZADD', K_RUNS, NOW_MS, RUN)
  redis.call('ZREMRANGEBYSCORE', K_RUNS, '-inf', NOW_MS - 2000 * TTL)  -- runs long expired
end
if ARGV[13] ~= '' then redis.call('SADD', ARGV[13], RUN) end
xadd(K_EVENTS, 'run_started', '', ARGV[12])
redis.call('XADD', run_key(RUN, 'history'), '*', 'k', 'start', 'd', json_pairs(15))
for _, n in ipairs(starts) do fire(n, {}) end
queue_ready()
local out = {}
for _, it in ipairs(READY) do table.insert(out, {it[1], it[2]}) end
return cjson.encode(out)
"""

#: Claim a queued item for a worker (or take over one whose lease expired).
#: KEYS: the run keys; ARGV[7] node, ARGV[8] visit, ARGV[9] worker name.
#: Returns JSON {"r": "ok"|"stale"|"gone"|"busy"|"waiting"|"done", "item": {...}}.
CLAIM = _LIB + r"""
local node, visit = ARGV[7], ARGV[8]
local raw, refused = pending_item(node, visit)
if not raw then return refused end
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
#: "finished": status|nil, "parent": [run, node, visit]|nil, "error": message|nil}.
#: When the run's graph is missing or incomplete nothing of the visit is written: the script
#: fails the run itself ("finished": "failed", "error" says why) and still returns "ok" so the
#: worker wakes a waiting parent run like after any other end of a run.
COMMIT = _LIB + r"""
local status = redis.call('HGET', K_META, 'status')
if status ~= 'running' then return cjson.encode({r = 'stale', status = status or 'missing'}) end
local node, visit = ARGV[7], ARGV[8]
if redis.call('HEXISTS', K_SCHED, 'd:' .. node .. ':' .. visit) == 1 then
  return cjson.encode({r = 'dup'})
end
local taken = cjson.decode(ARGV[10])
local problem = graph_problem()
if not problem and redis.call('HEXISTS', K_GRAPH, 'i:' .. node) == 0 then
  problem = 'has no node ' .. node
end
if problem then
  local parent, msg = fail_broken(node, graph_message(problem))
  return cjson.encode({r = 'ok', ready = {}, finished = 'failed', parent = parent, error = msg})
end
-- state writes: conflicts and reducers are settled for every key before anything is written
local cur_seq = tonumber(redis.call('HGET', K_SCHED, 'seq') or '0')
local fired_at = cur_seq
local own = redis.call('HGET', K_PENDING, node .. '|' .. visit)
if own then
  local fs = cjson.decode(own).fs
  if fs then fired_at = tonumber(fs) end
end
SEQ = cur_seq + 1
local writes, state_err = {}, nil
if #ARGV >= 15 then
  local rraw = redis.call('HGET', K_GRAPH, 'reducers')
  local reducers = rraw and cjson.decode(rraw) or {}
  for i = 15, #ARGV, 2 do
    local k, v = ARGV[i], ARGV[i + 1]
    local red = reducers[k]
    if red == nil and string.sub(k, 1, 9) ~= '_outputs.' then
      local w = redis.call('HGET', K_SCHED, 'w:' .. k)
      local wseq, wnode = nil, nil
      if w then wseq, wnode = string.match(w, '^(%d+)|(.*)$') end
      if wseq and tonumber(wseq) > fired_at then
        state_err = {'StateConflict', conflict_message(k, node, wnode)}
        break
      end
      table.insert(writes, {k, v, true})
    elseif red == nil or red == 'replace' then
      table.insert(writes, {k, v, false})
    else
      local nv, why = reduce_text(k, red, redis.call('HGET', K_STATE, k), v)
      if not nv then state_err = {'StateReducerError', why}; break end
      table.insert(writes, {k, nv, false})
    end
  end
end
if state_err then
  local err = cjson.encode({node_id = node, run_id = RUN, attempt = 1, type = state_err[1],
                            message = state_err[2], traceback = ''})
  redis.call('HSET', K_NODES, node, cjson.encode({status = 'failed', error = state_err[2]}))
  local parent = finalize('failed', err, 'run_failed')
  return cjson.encode({r = 'ok', ready = {}, finished = 'failed', parent = parent, error = state_err[2]})
end
redis.call('HSET', K_SCHED, 'd:' .. node .. ':' .. visit, '1', 'seq', SEQ)
redis.call('HDEL', K_SCHED, 'cw:' .. node .. '|' .. visit, 'ch:' .. node .. '|' .. visit,
           'cf:' .. node .. '|' .. visit)
redis.call('HSET', K_STATE, '_outputs.' .. node, ARGV[9])
for _, w in ipairs(writes) do
  redis.call('HSET', K_STATE, w[1], w[2])
  if w[3] then redis.call('HSET', K_SCHED, 'w:' .. w[1], SEQ .. '|' .. node) end
end
redis.call('HSET', K_NODES, node, ARGV[11])
redis.call('HDEL', K_PENDING, node .. '|' .. visit)
redis.call('ZREM', K_LEASES, member(node, visit))
local event_node = node
if ARGV[14] ~= '' then event_node = ARGV[14] end
local eid = xadd(K_EVENTS, 'node_succeeded', event_node, ARGV[12])
-- time travel: the committed step, in the same atomic call (flownb.engine.history); the event data
-- goes in as it is (its action and flag are read in Python: no JSON decoding on this path)
redis.call('XADD', run_key(RUN, 'history'), '*', 'k', 'commit', 'n', node, 'v', visit, 'o', ARGV[9],
           't', ARGV[10], 'w', json_writes(writes), 'd', ARGV[12], 'e', eid)
redis.call('HINCRBY', K_SCHED, 'active', -1)
local info = ginfo(node)
if info.s >= 0 then redis.call('HINCRBY', K_SCHED, 'a:' .. info.s, -1) end
local work = {}
resolve_out(node, taken, work)
if not FAILED then drain(work) end
local result = {r = 'ok', ready = {}}
if not FAILED and not BROKEN then
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
if BROKEN then result.error = BROKEN end
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
  local st = redis.call('HGET', meta, 'status')
  if st ~= 'running' and st ~= 'waiting' then return 0 end
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
  release_blueprints(meta, ttl)
  for _, part in ipairs({'meta', 'state', 'sched', 'partial', 'xpend', 'nodes', 'events', 'children', 'done',
                         'jobs', 'history'}) do
    redis.call('EXPIRE', run_key(run, part), ttl)
  end
  return n
end
return cancel(RUN, K_META, K_PENDING, K_CHILDREN)
"""

#: Mark a structural item (subflow/map) as waiting for ARGV[9] child runs. Its lease stays until
#: the worker has started every child (then it drops it), so a crash while creating children is
#: retried by the reaper (CLAIM answers 'create') and child creation is idempotent.
#: The count goes to the sched field ``cw:<node>|<visit>`` (each child's end decrements it) and the
#: ids to ``ch:<node>|<visit>`` (read once, when the parent resumes), not into the pending item.
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
redis.call('HSET', K_SCHED, 'cw:' .. f, ARGV[9], 'ch:' .. f, ARGV[10])
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

#: Store a blueprint's compiled graph (ARGV[3..] field, value pairs; none = only refresh) and give
#: it a TTL unless an active run holds it (see ``hold_blueprints``).
#: KEYS[1] the blueprint hash, KEYS[2] blueprint references; ARGV[1] digest, ARGV[2] TTL (s).
#: Returns the number of fields now stored (0 = not there: upload it).
UPLOAD = r"""
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
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

#: Park a visit that waits for a person (a wait/approval node): no lease, no worker holds it; the
#: run's status becomes 'waiting' when nothing else is active (see flownb.engine.waiting).
#: KEYS: the run keys (see module docstring); the waits zset ``{p}:waits`` is derived from
#: ARGV[2] (the prefix), see keys.py. ARGV[1..6] as every run-level script (run id, prefix,
#: events maxlen, TTL, queued and running lease ms); ARGV[7] node, ARGV[8] visit, ARGV[9] wait
#: info (JSON, kept as a string in the item's 'hj'), ARGV[10] timeout (ms) or '', ARGV[11]
#: node_waiting event data (JSON), ARGV[12] node stats (JSON).
#: Every check (status, done marker, pending item) comes before the first write.
#: Returns JSON {"r": "ok"|"stale"|"gone"|"done"|"already", "waiting": bool}.
PARK = _LIB + r"""
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
redis.call('HSET', K_NODES, node, ARGV[12])
if ARGV[10] ~= '' then
  redis.call('ZADD', PREFIX .. ':waits', NOW_MS + tonumber(ARGV[10]), member(node, visit))
end
xadd(K_EVENTS, 'node_waiting', node, ARGV[11])
maybe_waiting()
return cjson.encode({r = 'ok', waiting = redis.call('HGET', K_META, 'status') == 'waiting'})
"""

#: Answer a parked visit: refuse unless it still waits, then commit the answer with the COMMIT
#: script's own body (output, state, history, edges, joins, completion) — one atomic call, so a
#: second answer finds nothing waiting and is refused.
#: KEYS: the run keys (the waits zset ``{p}:waits`` is derived from ARGV[2]); ARGV: exactly
#: COMMIT's (ARGV[9] is the answer, the node's output).
#: Like COMMIT, nothing is written before the checks: the wait must still be parked and the run's
#: graph complete (else the run is failed by the script, saying why, as COMMIT does).
#: Returns COMMIT's answer, or JSON {"r": "refused", "status": ..., "done": bool}.
RESUME = _LIB + r"""
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
  redis.call('HSET', K_META, 'status', 'running')
  redis.call('DEL', K_DONE)
end
""" + COMMIT[len(_LIB):]

ALL = {"START": START, "CLAIM": CLAIM, "CLAIM_MANY": CLAIM_MANY, "COMMIT": COMMIT, "FAIL": FAIL, "CANCEL": CANCEL,
       "WAIT_CHILDREN": WAIT_CHILDREN, "REQUEUE": REQUEUE, "RENEW": RENEW, "UPLOAD": UPLOAD,
       "RESERVE_CHILDREN": RESERVE_CHILDREN, "PARK": PARK, "RESUME": RESUME}


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
