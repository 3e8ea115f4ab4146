"""The run-level scripts: start a run, claim visits, commit or fail a visit, cancel a run, wait
for child runs. Each is the prelude (:mod:`.prelude`) plus its own body; KEYS are the run keys.
"""

from __future__ import annotations

from .ahead import _GRAPH_CHECK, _READ_AHEAD
from .assemble import with_prelude

#: Create a run and queue its start nodes.
#: KEYS: the run keys (see module docstring); ARGV[7] blueprint digest, ARGV[8] blueprint id,
#: ARGV[9] parent link or '', ARGV[10] start nodes (JSON list), ARGV[11] bundle (JSON),
#: ARGV[12] event data (JSON), ARGV[13] parent children-set key or '', ARGV[14] input keys (JSON),
#: ARGV[15] trace context (JSON carrier, W3C traceparent: flownb.core.tracing) or '',
#: ARGV[16] '1' to record the run's history stream (time travel; a child run also records it
#: when its parent does), ARGV[17..] state k, v pairs.
#: Meta fields with nothing to say (no parent, bundle, trace or history) are not written; the
#: bundle is stored as one ``b:<blueprint id>`` field per blueprint (its digest).
#: Returns 'exists'; 'parent-ended' for a child run whose parent has ended (failed, cancelled —
#: e.g. its root hit a limit of flownb.core.limits); JSON {"err": why} when the graph or a bundle
#: blueprint is missing; in all three nothing is written. Else the JSON list of queued [node, visit].
START = with_prelude(r"""
if redis.call('EXISTS', K_META) == 1 then return 'exists' end
local starts = cjson.decode(ARGV[10])
-- one read of the graph: its field count (graph_problem's check) and the start nodes' join info
-- (fire() below uses it cached), then HLEN proves no field is missing
local gf = {'hlen'}
for _, n in ipairs(starts) do table.insert(gf, 'i:' .. n) end
local g = redis.call('HMGET', K_GRAPH, unpack(gf))
local problem = nil
if not g[1] then problem = 'is not in Redis (expired, evicted or deleted)'
else
  local hl = redis.call('HLEN', K_GRAPH)
  if hl ~= tonumber(g[1]) then problem = 'is incomplete in Redis (' .. hl .. ' of ' .. g[1] .. ' fields)' end
end
if problem then problem = 'the compiled graph of blueprint ' .. ARGV[8] .. ' ' .. problem end
for i, n in ipairs(starts) do
  if not problem then
    if g[i + 1] then _info[n] = cjson.decode(g[i + 1])
    else problem = 'the compiled graph of blueprint ' .. ARGV[8] .. ' has no start node ' .. n end
  end
end
local digests = run_digests(ARGV[7], ARGV[11])
local others = {}  -- the subflow bundle's blueprints (the run's own graph was checked above)
for d in pairs(digests) do if d ~= ARGV[7] then table.insert(others, d) end end
if not problem and #others > 0 then
  local keys = {}
  for _, d in ipairs(others) do table.insert(keys, bp_key(d)) end
  if redis.call('EXISTS', unpack(keys)) ~= #keys then  -- one read for all; which one, if not
    for _, d in ipairs(others) do
      if not problem and redis.call('EXISTS', bp_key(d)) == 0 then
        problem = 'blueprint ' .. d .. ' of its subflow bundle is not in Redis (expired or deleted)'
      end
    end
  end
end
local is_child = ARGV[9] ~= ''
local hist = ARGV[16] == '1'
if is_child then
  local prun = string.match(ARGV[9], '^(.*)|[^|]*|%d+$')
  if prun then  -- one read: the parent's status, and its history flag (a child inherits it)
    local pm = redis.call('HMGET', run_key(prun, 'meta'), 'status', 'history')
    if pm[1] ~= 'running' then return 'parent-ended' end
    if pm[2] == '1' then hist = true end
  end
end
if problem then return cjson.encode({err = problem, code = 'graph'}) end
hold_blueprints(digests)
local mset = {'status', 'running', 'blueprint', ARGV[7], 'blueprint_id', ARGV[8],
              'created_at', NOW_S, 'input_keys', ARGV[14], 'ttl', TTL}
for _, f in ipairs({{'parent', ARGV[9]}, {'trace', ARGV[15]}, {'history', hist and '1' or ''}}) do
  if f[2] ~= '' then table.insert(mset, f[1]); table.insert(mset, f[2]) end
end
-- the bundle as one short field per blueprint (flownb.distributed.bundles.meta_bundle): a
-- value over 64 bytes would turn the whole meta into a hash table, 3.5 times its size
for id, d in pairs(cjson.decode(ARGV[11])) do table.insert(mset, 'b:' .. id); table.insert(mset, d) end
redis.call('HSET', K_META, unpack(mset))
local inputs = {}
for i = 17, #ARGV do inputs[i - 16] = ARGV[i] end
hset_all(K_STATE, inputs)
ACTIVE, DEFER_ACTIVE = 0, true  -- written once, below, when the start nodes are counted
if not is_child then  -- child runs are reached through their parent, not listed
  redis.call('ZADD', K_RUNS, NOW_MS, RUN)
  if NOW_MS % 16 == 0 then  -- now and then (one submit in 16): drop the ids long expired
    redis.call('ZREMRANGEBYSCORE', K_RUNS, '-inf', NOW_MS - 2000 * TTL)
  end
end
if ARGV[13] ~= '' then redis.call('SADD', ARGV[13], RUN) end
xadd(K_EVENTS, 'run_started', '', ARGV[12])
if hist then redis.call('XADD', run_key(RUN, 'history'), '*', 'k', 'start', 'd', json_pairs(17)) end
-- the start nodes' first visits, as fire() + queue_ready() would write them, in one HSET per
-- hash (a new run: every visit count is 0); a start node inside a loop (its 'a:' activity
-- count) goes through fire()
local sched, pend, leases = {}, {}, {}
for _, n in ipairs(starts) do
  local info = ginfo(n)
  if info.s >= 0 or info.m < 1 then fire(n, {})
  else
    table.insert(sched, 'v:' .. n); table.insert(sched, 1)
    ACTIVE = ACTIVE + 1
    table.insert(READY, {n, 1, {}})
  end
end
local item = cjson.encode({st = 'q', s = {}, fs = 0})
for _, it in ipairs(READY) do
  table.insert(pend, it[1] .. '|' .. it[2]); table.insert(pend, item)
  table.insert(leases, NOW_MS + QUEUED_MS); table.insert(leases, member(it[1], it[2]))
end
table.insert(sched, 'active'); table.insert(sched, ACTIVE)
-- the status for COMMIT (set_status), and the history flag: read with its scheduling fields
table.insert(sched, 'st'); table.insert(sched, 'running')
if hist then table.insert(sched, 'hy'); table.insert(sched, '1') end
hset_all(K_SCHED, sched)
if #pend > 0 then
  hset_all(K_PENDING, pend)
  for i = 1, #leases, 400 do redis.call('ZADD', K_LEASES, unpack(leases, i, math.min(i + 399, #leases))) end
end
local out = {}
for _, it in ipairs(READY) do table.insert(out, {it[1], it[2]}) end
return cjson.encode(out)
""")

#: Claim a queued item for a worker (or take over one whose lease expired).
#: KEYS: the run keys; ARGV[7] node, ARGV[8] visit, ARGV[9] worker name.
#: Returns JSON {"r": "ok"|"stale"|"gone"|"busy"|"waiting"|"done"|"paused", "item": {...}}
#: ('paused': the run is paused, the item is parked until RESUME_RUN, flownb.distributed.controls).
CLAIM = with_prelude(r"""
local node, visit = ARGV[7], ARGV[8]
local raw, refused, paused = pending_item(node, visit)
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
if park_paused(node, visit, it, paused) then return cjson.encode({r = 'paused'}) end
local _, claimed = claim_one(node, visit, ARGV[9], 1, it)
return '{"r":"ok","item":' .. claimed .. '}'
""")

#: Claim several queued items of one run for a worker in one call (a batch job's items).
#: KEYS: the run keys; ARGV[7] worker name, ARGV[8..] node, visit pairs.
#: Returns JSON [{"node", "visit", "r", "item"}, ...] like CLAIM for each.
CLAIM_MANY = with_prelude(r"""
local mf = redis.call('HMGET', K_META, 'status', 'paused')  -- one read for every item
if mf[1] ~= 'running' then return cjson.encode({}) end
local paused = mf[2] == '1'
local out = {}  -- each item's answer as JSON text (a claimed item's as claim_one stored it)
for i = 8, #ARGV, 2 do
  local node, visit = ARGV[i], ARGV[i + 1]
  local res, json = {node = node, visit = tonumber(visit)}, nil
  local raw = redis.call('HGET', K_PENDING, node .. '|' .. visit)
  if not raw then  -- done (COMMIT deletes the item as it marks the visit done) or gone
    res.r = redis.call('HEXISTS', K_SCHED, 'd:' .. node .. ':' .. visit) == 1 and 'done' or 'gone'
  else
    local it = cjson.decode(raw)
    local dl = it.st == 'r' and redis.call('ZSCORE', K_LEASES, member(node, visit))
    if it.st == 'w' then
      if it.cr == 1 then
        it.cr = nil
        redis.call('HSET', K_PENDING, node .. '|' .. visit, cjson.encode(it))
        redis.call('ZADD', K_LEASES, NOW_MS + LEASE_MS, member(node, visit))
        res.r = 'create'; res.item = it
      else res.r = 'waiting' end
    elseif it.st == 'r' and dl and tonumber(dl) > NOW_MS then res.r = 'busy'
    elseif park_paused(node, visit, it, paused) then res.r = 'paused'
    else
      local _, item = claim_one(node, visit, ARGV[7], 1, it)
      json = '{"node":' .. cjson.encode(node) .. ',"visit":' .. string.format('%d', visit) ..
             ',"r":"ok","item":' .. item .. '}'
    end
  end
  out[#out + 1] = json or cjson.encode(res)
end
return '[' .. table.concat(out, ',') .. ']'
""")

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
_COMMIT_BODY = r"""
local node, visit = ARGV[7], ARGV[8]
-- the taken edges' indices keyed by number, as the out edges name them, and as text for the done
-- marker ('0,3'): read off ARGV[10] ('{"0":true,"3":true}', store_args.commit_args) by
-- string.find, not cjson (a table per call, and a number conversion each)
local tkn, tks = {}, string.match(ARGV[10], '^{"(%d+)":true}$')  -- (one taken edge: one match)
if tks then tkn[tonumber(tks)] = true
else
  local _p = 1
  tks = ''
  while true do
    local _, e, k = string.find(ARGV[10], '"(%d+)"', _p)
    if not e then break end
    tkn[tonumber(k)] = true; tks = tks == '' and k or tks .. ',' .. k; _p = e + 1
  end
end
-- one read of the graph fields and one of the scheduling fields this commit needs, with the
-- run's status, pause and history flags (set_status) and what routing will count ahead (.ahead:
-- successors' visits, the all-joins it feeds)
""" + _READ_AHEAD + r"""
local status, PAUSED, HISTORY = sf[5], sf[6] == '1', sf[7] == '1'
if not status then  -- a run started before the status was copied to sched: its meta
  local mf = redis.call('HMGET', K_META, 'status', 'paused', 'history')
  status, PAUSED, HISTORY = mf[1], mf[2] == '1', mf[3] == '1'
end
if status ~= 'running' then return cjson.encode({r = 'stale', status = status or 'missing'}) end
if sf[1] then
  return cjson.encode({r = 'dup'})
end
""" + _GRAPH_CHECK + r"""
if problem then
  local parent, msg = fail_broken(node, graph_message(problem))
  return cjson.encode({r = 'ok', ready = {}, finished = 'failed', parent = parent, error = msg})
end
-- state writes: conflicts and reducers are settled for every key before anything is written
local cur_seq = tonumber(sf[2] or '0')
local fired_at = cur_seq
-- the visit's own item: its 'fs' for the write-conflict check, its 'cw' for a subflow/map; a
-- plain node without state writes needs neither (its join info says 'c' = 0)
local kind = OWN_C
local own_it = nil
if #ARGV >= 15 or kind ~= 0 then
  local own = redis.call('HGET', K_PENDING, node .. '|' .. visit)
  own_it = own and cjson.decode(own)
  if own_it and own_it.fs then fired_at = tonumber(own_it.fs) end
end
SEQ = cur_seq + 1
SEQ_S = string.format('%d', SEQ)
local writes, state_err = {}, nil
if #ARGV >= 15 then
  local rraw = g[5]  -- read with the node's fields (an old graph without it: HLEN checked)
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
  redis.call('HSET', K_STATE, '_outputs:' .. node, cjson.encode({status = 'failed', error = state_err[2]}))
  local parent = finalize('failed', err, 'run_failed')
  return cjson.encode({r = 'ok', ready = {}, finished = 'failed', parent = parent, error = state_err[2]})
end
-- the done marker, the commit number, the writers of state keys and the active count go to
-- the sched hash in one HSET at the end (DEFER_ACTIVE: fire() counts in ACTIVE meanwhile)
local sched_set = {want[1], '1', 'seq', SEQ_S}  -- (want[1]: 'd:<node>:<visit>', .ahead)
ACTIVE, DEFER_ACTIVE = SF_ACTIVE - 1, true
if kind ~= 0 and (not own_it or own_it.cw) then  -- a subflow/map visit: its child-run fields go
  redis.call('HDEL', K_SCHED, 'cw:' .. node .. '|' .. visit, 'ch:' .. node .. '|' .. visit,
             'cf:' .. node .. '|' .. visit)
end
-- the output and the node's stats ('_outputs:<node>', keys.STATS_FIELD) in one HSET
local state_set = {'_outputs.' .. node, ARGV[9], '_outputs:' .. node, ARGV[11]}
for _, w in ipairs(writes) do
  table.insert(state_set, w[1]); table.insert(state_set, w[2])
  if w[3] then table.insert(sched_set, 'w:' .. w[1]); table.insert(sched_set, SEQ_S .. '|' .. node) end
end
-- (hset_all inline: its closure would be made at every call; callgrind)
for i = 1, #state_set, 400 do redis.call('HSET', K_STATE, unpack(state_set, i, math.min(i + 399, #state_set))) end
redis.call('HDEL', K_PENDING, node .. '|' .. visit)
redis.call('ZREM', K_LEASES, RUN .. '|' .. node .. '|' .. visit)  -- (member(): no closure made for it)
if OWN_S >= 0 then redis.call('HINCRBY', K_SCHED, 'a:' .. OWN_S, -1) end
local work = {}
resolve_out(node, tkn, work)
if not FAILED then drain(work) end
-- the events once the routing is known (routing writes none): node_succeeded, then the skipped
-- branches, then the start of the successor claimed inline — one entry when no skip
-- comes between
local inline = not FAILED and not BROKEN and ARGV[13] ~= '' and #READY == 1 and not PAUSED
local merged = inline and not SKIPPED
-- the inline successor's visit as text, made once (its event, queue_ready, the answer)
if inline then READY[1][4] = string.format('%d', READY[1][2]) end
local event_node = node
if ARGV[14] ~= '' then event_node = ARGV[14] end
local eid
local wj = inline and cjson.encode(ARGV[13])  -- (the worker as JSON, once: the event and the item)
if merged then  -- fields t2, n2, d2 carry the second event (flownb.core.events.Event.all_from_fields)
  eid = redis.call('XADD', K_EVENTS, 'MAXLEN', '~', ARGV[3], '*', 't', 'node_succeeded', 'n', event_node,
                   'ts', NOW_S, 'd', ARGV[12], 't2', 'node_started', 'n2', READY[1][1],
                   'd2', '{"visit":' .. READY[1][4] .. ',"worker":' .. wj .. ',"delivery":1}')
else
  eid = xadd(K_EVENTS, 'node_succeeded', event_node, ARGV[12])
end
-- the done marker holds the taken edges, 't' and their indices ('t0,3'): RunResult.taken_edges,
-- the run's path, history or not (short: a value over 64 bytes would make the hash 3x bigger)
sched_set[2] = 't' .. tks
-- time travel, when asked: the committed step, in the same atomic call (flownb.engine.history);
-- the event data goes in as it is (its action and flag are read in Python: no JSON decoding here)
if HISTORY then
  redis.call('XADD', run_key(RUN, 'history'), '*', 'k', 'commit', 'n', node, 'v', visit, 'o', ARGV[9],
             't', ARGV[10], 'w', json_writes(writes), 'd', ARGV[12], 'e', eid)
end
local ready, claimed = {}, nil
if not FAILED and not BROKEN then  -- a paused run claims nothing
  claimed = queue_ready(inline and ARGV[13] or nil, merged, wj or nil)
  if not inline then
    for _, it in ipairs(READY) do table.insert(ready, {it[1], it[2]}) end
  end
end
-- the active count when it changed (a chain step: one ended, one fired), as '%d' text
if ACTIVE ~= SF_ACTIVE then
  sched_set[#sched_set + 1] = 'active'; sched_set[#sched_set + 1] = string.format('%d', ACTIVE)
end
for k = 1, #asks, 3 do  -- the visit counters fire() counted in (.ahead)
  local t = asks[k]
  if not asks[k + 1] and AHEAD[t] ~= asks[k + 2] then
    -- (the inline successor's visit is that counter, already text)
    local vt = inline and READY[1][1] == t and READY[1][4] or string.format('%d', AHEAD[t])
    sched_set[#sched_set + 1] = 'v:' .. t; sched_set[#sched_set + 1] = vt
  end
end
if LATE then for k = 1, #LATE do sched_set[#sched_set + 1] = LATE[k] end end
for i = 1, #sched_set, 400 do redis.call('HSET', K_SCHED, unpack(sched_set, i, math.min(i + 399, #sched_set))) end
-- (the run ends or waits, or nothing happens: maybe_finished is cold, called only when it may act)
local parent, held = nil, sf[4] or '0'
if BROKEN or FAILED or ACTIVE == 0 or held ~= '0' then parent = maybe_finished(held) end
-- "claimed": [node, visit, item], the item as queue_ready wrote it (JSON text, not encoded again)
if claimed and not parent and not STATUS and not BROKEN then  -- a plain step: the answer as text
  local n1 = READY[1][1]  -- (a name without a quote, backslash or control byte is its own JSON)
  n1 = string.find(n1, '[%c"\\]') and cjson.encode(n1) or '"' .. n1 .. '"'
  return '{"r":"ok","ready":{},"claimed":[' .. n1 .. ',' .. READY[1][4] .. ',' ..
         claimed .. ']}'
end
local result = {r = 'ok', ready = ready, parent = parent}
result.finished = STATUS ~= 'running' and STATUS or nil
if BROKEN then result.error = BROKEN end
if not claimed then return cjson.encode(result) end
return string.sub(cjson.encode(result), 1, -2) .. ',"claimed":[' .. cjson.encode(READY[1][1]) .. ',' ..
       READY[1][4] .. ',' .. claimed .. ']}'
"""
COMMIT = with_prelude(_COMMIT_BODY)

#: A node failed for good (or a run-level error): fail the run once.
#: KEYS: the run keys; ARGV[7] node, ARGV[8] error (JSON), ARGV[9] stats (JSON) or '',
#: ARGV[10] node_failed event data (JSON) or ''.
FAIL = with_prelude(r"""
local status = redis.call('HGET', K_META, 'status')
if status ~= 'running' then return cjson.encode({r = 'stale', status = status or 'missing'}) end
if ARGV[9] ~= '' then redis.call('HSET', K_STATE, '_outputs:' .. ARGV[7], ARGV[9]) end
if ARGV[10] ~= '' then xadd(K_EVENTS, 'node_failed', ARGV[7], ARGV[10]) end
local parent = finalize('failed', ARGV[8], 'run_failed')
return cjson.encode({r = 'ok', parent = parent})
""")

#: Cancel a run and, recursively, its child runs.
#: KEYS: the run keys. Returns the number of runs cancelled.
CANCEL = with_prelude(r"""
local function cancel(run, meta, pending, children)
  local st = redis.call('HGET', meta, 'status')
  if st ~= 'running' and st ~= 'waiting' then return 0 end
  local n = 1
  for _, child in ipairs(redis.call('SMEMBERS', children)) do
    n = n + cancel(child, run_key(child, 'meta'), run_key(child, 'pending'), run_key(child, 'children'))
  end
  set_status(meta, run_key(run, 'sched'), 'cancelled', 'finished_at', NOW_S)
  xadd(run_key(run, 'events'), 'run_cancelled', '', '{}')
  redis.call('RPUSH', run_key(run, 'done'), 'cancelled')
  for _, f in ipairs(redis.call('HKEYS', pending)) do redis.call('ZREM', K_LEASES, run .. '|' .. f) end
  redis.call('DEL', pending)
  local ttl = tonumber(redis.call('HGET', meta, 'ttl') or TTL)
  release_blueprints(meta, ttl)
  redis.call('DEL', run_key(run, 'jobs'))  -- nothing is queued any more (see finalize)
  for _, part in ipairs({'meta', 'state', 'sched', 'partial', 'xpend', 'nodes', 'events', 'children', 'done',
                         'history'}) do
    expire_run_key(run_key(run, part), part, ttl)
  end
  return n
end
return cancel(RUN, K_META, K_PENDING, K_CHILDREN)
""")

#: Mark a structural item (subflow/map) as waiting for ARGV[9] child runs. Its lease stays until
#: the worker has started every child (then it drops it), so a crash while creating children is
#: retried by the reaper (CLAIM answers 'create') and child creation is idempotent.
#: The count goes to the sched field ``cw:<node>|<visit>`` (each child's end decrements it) and the
#: ids to ``ch:<node>|<visit>`` (read once, when the parent resumes), not into the pending item.
#: KEYS: the run keys; ARGV[7] node, ARGV[8] visit, ARGV[9] number of children, ARGV[10] child ids JSON.
WAIT_CHILDREN = with_prelude(r"""
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
""")
