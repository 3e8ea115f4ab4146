"""The LLM rate-limit script (GCRA on Redis server time), used by :mod:`flownb.distributed.ratelimit`.
"""

from __future__ import annotations

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
