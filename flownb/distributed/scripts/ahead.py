"""COMMIT's reads ahead of routing, so a plain step costs fewer Redis commands.

A commit used to read the graph's field count (``HLEN``) to prove no field was missing, and to
count a successor's visits and a join's arrivals with a command each. Here it reads, in one
``HMGET`` per hash, every field a *plain* commit needs: the node's graph fields (``i:``, ``o:``,
``L``, ``reducers``) and, with its own scheduling fields, the visit counters of the successors
it fires and the slot and count of each all-join it feeds. A plain commit is one that reads
nothing else: no loops, no skipped branch, no join that fires now, no end-of-run sweep. Then a
missing graph field of that ``HMGET`` is the only way the graph can fail it (no ``HLEN``), and
the counters and join slots it changes are written with its done marker, in one ``HSET``. Any
other commit checks the whole graph and routes as before (:mod:`.prelude`); either way every
check is made before the first write (a Lua script is not rolled back). Only COMMIT includes
these functions (after the prelude): every other script would pay for creating them per call.
"""

from __future__ import annotations

_AHEAD = r"""
-- The graph fields a commit of ``node`` reads first, in one HMGET: 'hlen', its join info, its
-- out edges, the loop flag and the reducers. Caches what it finds (a missing field is judged by
-- commit_graph_problem, before any write).
local function commit_graph_fields(node)
  local g = redis.call('HMGET', K_GRAPH, 'hlen', 'i:' .. node, 'o:' .. node, 'L', 'reducers')
  if g[2] then _info[node] = cjson.decode(g[2]) end
  if g[3] then _out[node] = seed_targets(cjson.decode(g[3])) end
  LOOPS = g[4] ~= '0'
  return g
end

-- One read of the scheduling fields a commit of ``node`` needs: its done marker, the commit
-- number, the active and held counts and, ahead of routing, the visit counters of the successors
-- its taken edges fire (VISITS) and, for an all-join it feeds by one edge, that slot's queue and
-- the join's count (JOINS_AHEAD). Returns the HMGET's reply (its [1]: the done marker).
local function read_ahead(node, visit, taken)
  local want, asks, edges = {'d:' .. node .. ':' .. visit, 'seq', 'active', 'h'}, {}, {}
  local o = _out[node] or {}
  for _, e in ipairs(o) do edges[e[2]] = (edges[e[2]] or 0) + 1 end
  for _, e in ipairs(o) do
    if #asks >= 1000 then break end  -- (a wider fan-out counts the rest with HINCRBY)
    local t, ti = e[2], e[5]
    if e[3] == 0 and ti and ti.n > 1 and ti.j == 'all' and edges[t] == 1 then
      table.insert(asks, {t, e[4]})
      table.insert(want, 'q:' .. t .. ':' .. e[4]); table.insert(want, 'c:' .. t)
    elseif e[3] ~= 2 and taken[tostring(e[1])] == true and VISITS_READ[t] == nil then
      VISITS_READ[t] = true
      table.insert(asks, {t})
      table.insert(want, 'v:' .. t)
    end
  end
  local sf = redis.call('HMGET', K_SCHED, unpack(want))
  local i = 5
  for _, a in ipairs(asks) do
    if a[2] == nil then
      VISITS_READ[a[1]] = tonumber(sf[i] or '0'); VISITS[a[1]] = VISITS_READ[a[1]]; i = i + 1
    else
      JOINS_AHEAD[a[1]] = {pos = a[2], q = sf[i] or '', c = tonumber(sf[i + 1] or '0')}; i = i + 2
    end
  end
  return sf
end

-- Whether the commit reads no graph field beyond its HMGET and fires no join: a node with out
-- edges, all forward, whose targets' join info rides on the edge, in a graph without loops, with
-- the reducers field there when it writes state; each edge taken to a single-input target (it
-- fires at once, its visits read ahead and within its max_visits) or feeding an all-join this
-- arrival does not complete; and the run stays active (no end-of-run sweep). So nothing is skipped (no 'o:' of another node), no join reads
-- 'src:', no loop 'n:' or 'x:'. A graph without 'o:' or 'reducers' (stored before they were
-- always written) is never plain. ``active``: the run's active count before this commit.
local function plain_commit(node, g, taken, writes_state, active)
  if not (g[2] and g[3]) or LOOPS or (writes_state and not g[5]) then return false end
  local fires = 0
  for _, e in ipairs(_out[node]) do
    local ti = e[5]
    if e[3] ~= 0 or not ti then return false end
    if ti.n == 1 then
      -- it fires, within its max_visits (a failing fire could end the run: the sweep reads more)
      local v = VISITS[e[2]]
      if taken[tostring(e[1])] ~= true or v == nil or v + 1 > ti.m then return false end
      fires = fires + 1
    else
      local a = JOINS_AHEAD[e[2]]
      if not a or a.pos ~= e[4] then return false end
      if (a.q == '' and a.c + 1 or a.c) >= ti.n then return false end  -- it fires now
    end
  end
  return active - 1 + fires > 0
end

-- graph_problem for a commit of ``node`` (``g``: commit_graph_fields), and PLAIN. A plain commit
-- needs no HLEN: a missing field of its HMGET is the only way the graph can fail it ('o:<node>'
-- is written for every node, so its absence is never read as "no out edges"). Any other commit
-- may read more fields, so the field count proves none is missing before the first write.
local function commit_graph_problem(node, g, taken, writes_state, active)
  if not g[1] then return 'is not in Redis (expired, evicted or deleted)' end
  PLAIN = plain_commit(node, g, taken, writes_state, active)
  if not PLAIN then
    local n = redis.call('HLEN', K_GRAPH)
    if n ~= tonumber(g[1]) then return 'is incomplete in Redis (' .. n .. ' of ' .. g[1] .. ' fields)' end
  end
  if not g[2] then return 'has no node ' .. node end
  if not g[3] then _out[node] = {} end  -- an old graph's node without out edges (HLEN checked)
  return nil
end

-- a plain commit's arrival at an all-join, read ahead: the join does not fire now, so the slot's
-- queue and the join's count go with the done marker (LATE) instead of three commands here
local function deliver_ahead(target, pos, t)
  local a = PLAIN and JOINS_AHEAD[target]
  if not a or a.pos ~= pos then return false end
  JOINS_AHEAD[target] = nil
  if a.q == '' then
    table.insert(LATE, 'c:' .. target); table.insert(LATE, a.c + 1)
    if a.c == 0 then redis.call('SADD', K_PARTIAL, target) end
  end
  table.insert(LATE, 'q:' .. target .. ':' .. pos); table.insert(LATE, a.q .. (t and 'T' or 'D'))
  return true
end
"""
