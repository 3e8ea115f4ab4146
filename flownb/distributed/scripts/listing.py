"""The read-only script behind the runs browser (:mod:`flownb.distributed.runlist`).

Why a script: listing 10,000 runs by a pipeline of ``HMGET`` spends most of its time packing
10,000 commands in the client; one script call per chunk of the run index reads the same five
meta fields inside Redis. It writes nothing and reads only what ``HMGET`` would.
"""

from __future__ import annotations

#: One chunk of the runs index, newest first, with each run's listing fields.
#: KEYS[1] the runs index (``{p}:runs``); ARGV[1] key prefix (``{p}``), ARGV[2] first rank,
#: ARGV[3] last rank (ZREVRANGE, inclusive).
#: Returns a flat array: per listed run, id, status, blueprint id, created_at, finished_at,
#: paused (``''`` when missing); expired runs and child runs are left out.
LIST_RUNS = r"""
local ids = redis.call('ZREVRANGE', KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local m = redis.call('HMGET', ARGV[1] .. ':run:' .. id .. ':meta',
                       'status', 'blueprint_id', 'created_at', 'finished_at', 'parent', 'paused')
  if m[1] and not (m[5] and m[5] ~= '') then
    out[#out + 1] = id
    out[#out + 1] = m[1]
    out[#out + 1] = m[2] or ''
    out[#out + 1] = m[3] or ''
    out[#out + 1] = m[4] or ''
    out[#out + 1] = m[6] or ''
  end
end
return out
"""

__all__ = ["LIST_RUNS"]
