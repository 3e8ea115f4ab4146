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
check is made before the first write (a Lua script is not rolled back).

Straight-line code inside COMMIT's body, not functions of the prelude: Redis runs the whole
script text at every call, and creating a closure that captures the prelude's locals costs more
instructions (callgrind) than the Redis command it saves; only ``deliver``'s hook is a function
(``AHEAD_DELIVER``, made only when a join is read ahead). Tables are made only when needed too:
a table allocated per call costs a few thousand instructions with its garbage collection.
"""

from __future__ import annotations

#: COMMIT's reads (``node``, ``visit``, ``tkn``: the taken edges' indices): ``g``, the node's
#: graph fields in one HMGET ('hlen', join info, out edges, loop flag, reducers; judged by
#: _GRAPH_CHECK before any write), and ``sf``, its scheduling fields in one HMGET (done marker,
#: commit number, active and held counts, the run's status, pause and history flags:
#: ``set_status``) with, ahead of routing, the visit counters of the successors its taken edges
#: fire (VISITS) and, for an all-join it feeds by one edge, that slot's queue and the join's count
#: (JOINS_AHEAD). Up to 1,000 successors: a wider fan-out counts the rest with HINCRBY.
_READ_AHEAD = r"""
local PLAIN, JOINS_AHEAD, LATE = false, nil, nil
local g = redis.call('HMGET', K_GRAPH, 'hlen', 'i:' .. node, 'o:' .. node, 'L', 'reducers')
-- the node's own join info: a node outside loops and not a subflow/map ('"s":-1', '"c":0' as
-- store.upload_blueprint writes them) needs nothing else of it here, so its text is kept
-- undecoded (ginfo decodes it if asked: ~10k instructions saved); any other is decoded now
local OWN_S, OWN_C = -1, 0
if g[2] then
  if string.find(g[2], ',"s":-1,', 1, true) and string.find(g[2], ',"c":0}', 1, true) then
    _info[node] = g[2]
  else
    local i = cjson.decode(g[2]); _info[node] = i; OWN_S, OWN_C = i.s, i.c
  end
end
if g[3] then  -- (seed_targets, inline: its closure is made only by cold code)
  local o = cjson.decode(g[3])
  for k = 1, #o do
    local e = o[k]
    if e[5] and _info[e[2]] == nil then _info[e[2]] = e[5] end
  end
  _out[node] = o
end
LOOPS = g[4] ~= '0'
-- asks: (target, slot position or false for its visit counter, the counter as read) triples
local want, asks, o = {'d:' .. node .. ':' .. visit, 'seq', 'active', 'h', 'st', 'pz', 'hy'}, {}, _out[node] or {}
local edges = nil  -- edges per target, counted when a join is among them
for k = 1, #o do
  local e = o[k]
  if #asks >= 3000 then break end  -- (a wider fan-out counts the rest with HINCRBY)
  local t, ti = e[2], e[5]
  if e[3] == 0 and ti and ti.n > 1 and ti.j == 'all' then
    if edges == nil then
      edges = {}
      for m = 1, #o do edges[o[m][2]] = (edges[o[m][2]] or 0) + 1 end
    end
    if edges[t] == 1 then
      asks[#asks + 1] = t; asks[#asks + 1] = e[4]; asks[#asks + 1] = 0
      want[#want + 1] = 'q:' .. t .. ':' .. e[4]; want[#want + 1] = 'c:' .. t
    end
  elseif e[3] ~= 2 and tkn[e[1]] and (AHEAD == nil or AHEAD[t] == nil) then
    AHEAD = AHEAD or {}
    AHEAD[t] = false  -- (asked; its count below)
    asks[#asks + 1] = t; asks[#asks + 1] = false; asks[#asks + 1] = 0
    want[#want + 1] = 'v:' .. t
  end
end
local sf = redis.call('HMGET', K_SCHED, unpack(want))
local SF_ACTIVE = tonumber(sf[3] or '0')  -- (the active count as read, converted once)
do
  local i = 8
  for k = 1, #asks, 3 do
    local t, pos = asks[k], asks[k + 1]
    if not pos then
      local v = tonumber(sf[i] or '0'); AHEAD[t] = v; asks[k + 2] = v; i = i + 1
    else
      if JOINS_AHEAD == nil then
        JOINS_AHEAD, LATE = {}, {}
        -- a plain commit's arrival at an all-join, read ahead: the join does not fire now, so the
        -- slot's queue and the join's count go with the done marker (LATE), not three commands
        AHEAD_DELIVER = function(target, p, taken_edge)
          local a = PLAIN and JOINS_AHEAD[target]
          if not a or a.pos ~= p then return false end
          JOINS_AHEAD[target] = nil
          local n = #LATE
          if a.q == '' then
            LATE[n + 1] = 'c:' .. target; LATE[n + 2] = string.format('%d', a.c + 1); n = n + 2
            if a.c == 0 then redis.call('SADD', K_PARTIAL, target) end
          end
          LATE[n + 1] = 'q:' .. target .. ':' .. p; LATE[n + 2] = a.q .. (taken_edge and 'T' or 'D')
          return true
        end
      end
      JOINS_AHEAD[t] = {pos = pos, q = sf[i] or '', c = tonumber(sf[i + 1] or '0')}; i = i + 2
    end
  end
end
"""

#: Why the graph cannot serve this commit (``problem``, nil when it can), and PLAIN: whether the
#: commit reads no graph field beyond its HMGET and fires no join — a graph without loops, the
#: reducers field there when it writes state, every out edge forward with its target's join info
#: on it, each either taken to a single-input target (it fires at once, its visits read ahead
#: and within its max_visits: a failing fire could end the run) or feeding an all-join this
#: arrival does not complete, and the run stays active (no end-of-run sweep). So nothing is
#: skipped (no 'o:' of another node), no join reads 'src:', no loop 'n:' or 'x:'. A plain commit
#: needs no HLEN: a missing field of its HMGET is the only way the graph can fail it ('o:<node>'
#: is written for every node, so its absence is never read as "no out edges"). Any other commit
#: may read more fields, so the field count proves none is missing before the first write. A
#: graph without 'o:' or 'reducers' (stored before they were always written) is never plain.
_GRAPH_CHECK = r"""
local problem = nil
if not g[1] then
  problem = 'is not in Redis (expired, evicted or deleted)'
else
  PLAIN = (g[2] and g[3] and not LOOPS and (#ARGV < 15 or g[5])) and true or false
  if PLAIN then
    local fires = 0
    local o = _out[node]
    for k = 1, #o do
      local e = o[k]
      local ti, a = e[5], JOINS_AHEAD and JOINS_AHEAD[e[2]]
      if e[3] ~= 0 or not ti then PLAIN = false
      elseif ti.n == 1 then
        local v = AHEAD and AHEAD[e[2]]
        if not tkn[e[1]] or not v or v + 1 > ti.m then PLAIN = false end
        fires = fires + 1
      elseif not a or a.pos ~= e[4] or (a.q == '' and a.c + 1 or a.c) >= ti.n then
        PLAIN = false  -- (not read ahead, or this arrival completes the join: it reads 'src:')
      end
      if not PLAIN then break end
    end
    PLAIN = PLAIN and SF_ACTIVE - 1 + fires > 0
  end
  if not PLAIN then
    local n = redis.call('HLEN', K_GRAPH)
    if n ~= tonumber(g[1]) then problem = 'is incomplete in Redis (' .. n .. ' of ' .. g[1] .. ' fields)' end
  end
  if not problem and not g[2] then problem = 'has no node ' .. node end
  if not problem and not g[3] then _out[node] = {} end  -- an old graph's node without out edges
end
"""
