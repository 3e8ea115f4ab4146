"""The floor of a distributed hop: a token handed between processes with plain Redis.

``python -m bench.raw_peer URL NAME`` loops: ``BLMOVE rawpeer:ready → rawpeer:proc:NAME`` (take the
token, reliably), then one ``EVALSHA`` that removes it from the processing list and pushes the next
token (or the done marker). That is the least any Redis-backed hand-off with a crash-safe claim can
do per hop: one blocking pop and one script call. With two processes blocked on the same list,
Redis serves the one waiting longest, so the token alternates between them.

A token is ``i|n|done_key``.
"""

from __future__ import annotations

import sys

HOP = r"""
redis.call('LREM', KEYS[1], 1, ARGV[1])
local i, n, done = string.match(ARGV[1], '^(%d+)|(%d+)|(.*)$')
i, n = tonumber(i), tonumber(n)
if i + 1 < n then
  redis.call('LPUSH', KEYS[2], (i + 1) .. '|' .. n .. '|' .. done)
else
  redis.call('LPUSH', done, '1')
end
return i
"""

READY = "rawpeer:ready"


def main(url: str, name: str) -> int:
    import redis

    # No client-side read timeout: redis-py 8 defaults to socket_timeout=5 s, and a BLMOVE that
    # the server answers just after the client gave up (and retried) moves the token into this
    # process's list with nobody to see it: the chain would stall for good.
    r = redis.Redis.from_url(url, socket_timeout=None)
    sha = r.script_load(HOP)
    proc = f"rawpeer:proc:{name}"
    r.set(f"rawpeer:alive:{name}", 1)
    while True:
        msg = r.blmove(READY, proc, 0, "RIGHT", "LEFT")
        if msg is None:
            continue
        r.evalsha(sha, 2, proc, READY, msg)


if __name__ == "__main__":
    try:
        raise SystemExit(main(sys.argv[1], sys.argv[2]))
    except KeyboardInterrupt:
        raise SystemExit(0) from None
