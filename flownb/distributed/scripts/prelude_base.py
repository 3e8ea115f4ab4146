"""The first half of the Lua prelude every run-level script starts with: the run keys and ARGV,
events, the pending-item check, the compiled graph and why it cannot be used, the state reducers
(on JSON text) and the blueprint reference counts. :mod:`.prelude` adds the join algorithm.
"""

from __future__ import annotations

_BASE = r"""
local K_META, K_STATE, K_SCHED, K_PENDING, K_PARTIAL = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local K_XPEND, K_NODES, K_EVENTS, K_CHILDREN, K_GRAPH = KEYS[6], KEYS[7], KEYS[8], KEYS[9], KEYS[10]
local K_LEASES, K_RUNS, K_DONE, K_BPREFS = KEYS[11], KEYS[12], KEYS[13], KEYS[14]
local RUN, PREFIX = ARGV[1], ARGV[2]
local MAXLEN, TTL = tonumber(ARGV[3]), tonumber(ARGV[4])
local QUEUED_MS, LEASE_MS = tonumber(ARGV[5]), tonumber(ARGV[6])
-- (made as text: string.format and arithmetic on the reply's strings convert each number, ~1k
-- instructions apiece)
local _t = redis.call('TIME')
local _us = string.sub('00000' .. _t[2], -6)  -- the microseconds, six digits
local NOW_MS = tonumber(_t[1] .. string.sub(_us, 1, 3))
local NOW_S = _t[1] .. '.' .. _us

-- (numbers go to Redis as text made here: Lua's own conversion formats every number as a float,
-- a few thousand instructions each; MAXLEN as it came, ARGV[3])
local function xadd(key, typ, node, data)
  return redis.call('XADD', key, 'MAXLEN', '~', ARGV[3], '*', 't', typ, 'n', node or '', 'ts', NOW_S,
             'd', data or '{}')
end
-- What makes a visit's pending item takeable, checked before any write by every script that
-- takes one up (CLAIM, PARK): the run is running, the visit is not done, the item exists.
-- Returns the item's JSON, or nil and the encoded refusal.
-- (its third value: the run's pause flag, read with the status for park_paused)
local function pending_item(node, visit)
  local mf = redis.call('HMGET', K_META, 'status', 'paused')
  local status = mf[1]
  if status ~= 'running' then return nil, cjson.encode({r = 'stale', status = status or 'missing'}) end
  -- COMMIT deletes the item with the same call that marks the visit done: an item is never done
  local raw = redis.call('HGET', K_PENDING, node .. '|' .. visit)
  if raw then return raw, nil, mf[2] == '1' end
  if redis.call('HEXISTS', K_SCHED, 'd:' .. node .. ':' .. visit) == 1 then
    return nil, cjson.encode({r = 'done'})
  end
  return nil, cjson.encode({r = 'gone'})
end

local _info, _out = {}, {}
local function ginfo(node)
  local i = _info[node]
  if type(i) ~= 'table' then  -- nil, or the field's JSON text COMMIT read already (.ahead)
    local raw = i or redis.call('HGET', K_GRAPH, 'i:' .. node)
    if not raw then error('flownb: graph has no node ' .. node) end
    i = cjson.decode(raw)
    _info[node] = i
  end
  return i
end
-- an out edge is {idx, target, kind, pos, target's join info (graphs uploaded since issue 21)}
local function seed_targets(o)
  for _, e in ipairs(o) do
    if e[5] and _info[e[2]] == nil then _info[e[2]] = e[5] end
  end
  return o
end
local function gout(node)
  local o = _out[node]
  if o == nil then
    o = seed_targets(cjson.decode(redis.call('HGET', K_GRAPH, 'o:' .. node) or '[]'))
    _out[node] = o
  end
  return o
end

local READY, SKIPPED, FAILED, BROKEN = {}, nil, nil, nil  -- (SKIPPED: made by the first skip)
local SEQ = 0  -- this commit's number (flownb.core.reducers): items fired now remember it as 'fs'
local SEQ_S = '0'  -- the same as text (one string.format for the done marker and the items)
-- the run's 'active' count as this script left it (nil: not known, read it); with DEFER_ACTIVE
-- (COMMIT) it is only counted here and written once, with the done marker (fewer commands)
local ACTIVE, DEFER_ACTIVE = nil, false
-- COMMIT's read-ahead (.ahead), nil in every other script: the visit counters fire() counts in
-- (node -> visits, written once with the done marker), and deliver()'s hook for the joins it read
local AHEAD, AHEAD_DELIVER = nil, nil
local STATUS = nil  -- the status this script gave the run ('waiting', or its final one)
local LOOPS = true  -- whether the graph may have loop exits (false when its 'L' field says none)

-- why the run's compiled graph cannot be used (nil when it is complete)
local function graph_problem()
  local want = redis.call('HGET', K_GRAPH, 'hlen')
  if not want then return 'is not in Redis (expired, evicted or deleted)' end
  if redis.call('HLEN', K_GRAPH) ~= tonumber(want) then
    return 'is incomplete in Redis (' .. redis.call('HLEN', K_GRAPH) .. ' of ' .. want .. ' fields)'
  end
  return nil
end

-- A run's key gets its TTL when the run ends. A stream also gets compacted: Redis allocates a
-- stream's last node at its full size (4 KiB, ``stream-node-max-bytes``) however little it holds,
-- so the streams of a finished run (events, history; done was one too) held ~14 KiB of mostly empty
-- space; DUMP + RESTORE stores the same entries in exactly the bytes they need (a one-entry stream:
-- 4.7 KiB -> 0.6 KiB). Only streams up to 64 KiB, so the copy stays cheap.
local STREAM_PARTS = {events = true, history = true}
local function expire_run_key(k, part, ttl)
  if STREAM_PARTS[part] and ttl > 0 then
    local m = redis.call('MEMORY', 'USAGE', k)
    if m and m <= 65536 then
      local p = redis.call('DUMP', k)
      if p then
        redis.call('RESTORE', k, ttl * 1000, p, 'REPLACE')
        return
      end
    end
  end
  redis.call('EXPIRE', k, ttl)
end

-- HSET of a flat {field, value, ...} list, a few hundred pairs per call (Lua's unpack limit)
local function hset_all(key, flat)
  for i = 1, #flat, 400 do
    redis.call('HSET', key, unpack(flat, i, math.min(i + 399, #flat)))
  end
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

-- an active run holds its blueprints: no TTL while any run uses them (a blueprint another run
-- holds already has none: only the first reference removes it)
local function hold_blueprints(ds)
  for d in pairs(ds) do
    if redis.call('HINCRBY', K_BPREFS, d, 1) == 1 then redis.call('PERSIST', bp_key(d)) end
  end
end

-- the blueprint digests of a run from its meta: 'blueprint' and one 'b:<id>' field per bundle
-- blueprint (short values keep the meta a compact hash), or a 'bundle' JSON (runs started before)
local function meta_digests(meta)
  local ds, all = {}, redis.call('HGETALL', meta)
  for i = 1, #all, 2 do
    local f = all[i]
    if f == 'blueprint' or string.sub(f, 1, 2) == 'b:' then ds[all[i + 1]] = true
    elseif f == 'bundle' and all[i + 1] ~= '' then
      for _, d in pairs(cjson.decode(all[i + 1])) do ds[d] = true end
    end
  end
  return ds
end

-- the run ended: drop its references; the last one gives the blueprint its TTL
local function release_blueprints(meta, ttl)
  local ds = meta_digests(meta)
  for d in pairs(ds) do
    if redis.call('HINCRBY', K_BPREFS, d, -1) <= 0 then
      redis.call('HDEL', K_BPREFS, d)
      redis.call('EXPIRE', bp_key(d), 2 * ttl)
    end
  end
end
"""
