"""redis-server instructions per chain commit, counted by callgrind: a deterministic A/B.

Wall-clock and CPU-time figures of redis-server are noisy on a shared machine; the instructions
it executes are not. This runs ``redis-server`` under ``valgrind --tool=callgrind`` (no workers):
uploads a chain of N no-op nodes, starts a run, and counts only the N-1 ``COMMIT`` calls that
follow (each claims its successor inline, as a worker's commit does). ``--ref`` takes the Lua
scripts of another git revision (``git archive``) for the same run, so two versions of the
scripts compare on one machine, one config::

    python -m bench.redis_callgrind --n 1000                      # this tree
    python -m bench.redis_callgrind --n 1000 --ref 10005ec         # the scripts of a revision
    python -m bench.redis_callgrind --n 1000 --hash-entries 512    # Redis's default encoding

Prints instructions per commit and the top functions (``callgrind_annotate``). Needs valgrind.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _scripts(ref: str | None) -> Any:
    """The ``scripts`` package of this tree, or of git revision ``ref`` (imported apart)."""
    if ref is None:
        return importlib.import_module("flownb.distributed.scripts")
    tmp = tempfile.mkdtemp(prefix="flownb-cg-")
    tar = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "flownb/distributed/scripts"],
                         check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp], input=tar, check=True)
    os.rename(os.path.join(tmp, "flownb/distributed/scripts"), os.path.join(tmp, "refscripts"))
    sys.path.insert(0, tmp)
    return importlib.import_module("refscripts")


def measure(n: int, ref: str | None, hash_entries: int, out: str) -> int:
    import redis

    import flownb
    from flownb.core.graph import analyse
    from flownb.distributed.store import RedisStore
    from flownb.distributed.store_args import commit_args, run_script_args

    binary = os.path.join(os.path.dirname(sys.executable), "redis-server")
    port = 20000 + os.getpid() % 20000
    srv = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                            "--instr-atstart=no", binary, "--port", str(port), "--save", "",
                            "--appendonly", "no", "--hash-max-ziplist-entries", str(hash_entries)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    r = redis.Redis(port=port)
    try:
        for _ in range(300):
            try:
                r.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.2)
        store = RedisStore(r)
        b = flownb.Builder(f"callgrind-chain-{n}")
        for i in range(n):
            b.node(f"n{i}", "noop")
        b.chain(*[f"n{i}" for i in range(n)])
        bp = b.build()
        g, _ = analyse(bp)
        digest = store.upload_blueprint(bp)
        idx = {(e.source, e.target): e.idx for e in g.edges}
        sha = r.script_load(_scripts(ref).ALL["COMMIT"])
        store.start_run("cg", bp, g, {})
        keys, args = run_script_args(store.keys, store.settings, "cg", digest)
        tails = [commit_args(f"n{i}", 1, output_json="null", taken=[idx[(f"n{i}", f"n{i + 1}")]],
                             stats={"status": "succeeded", "visits": 1, "attempts": 1},
                             event={"visit": 1, "attempt": 1, "worker": "w"}, claim_for="w")
                 for i in range(n - 1)]
        subprocess.run(["callgrind_control", "-i", "on", str(srv.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        for t in tails:
            r.evalsha(sha, len(keys), *keys, *args, *t)
        subprocess.run(["callgrind_control", "-d", str(srv.pid)], check=True,
                       stdout=subprocess.DEVNULL)
        time.sleep(1.0)
    finally:
        srv.terminate()
        srv.wait(60)
    dump = out + ".1"
    total = next(int(line.split()[1]) for line in open(dump) if line.startswith("summary:"))
    return total // (n - 1)


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.redis_callgrind")
    ap.add_argument("--n", type=int, default=1000, help="chain length (default 1000)")
    ap.add_argument("--ref", default=None, help="take the Lua scripts of this git revision")
    ap.add_argument("--hash-entries", type=int, default=64,
                    help="hash-max-ziplist-entries (flownb's servers: 64; Redis's default: 512)")
    ap.add_argument("--top", type=int, default=15)
    a = ap.parse_args()
    out = os.path.join(tempfile.mkdtemp(prefix="flownb-cg-out-"), "callgrind.out")
    per = measure(a.n, a.ref, a.hash_entries, out)
    print(f"scripts of {a.ref or 'this tree'}, chain of {a.n}, hash-max-ziplist-entries "
          f"{a.hash_entries}: {per:,} redis-server instructions per COMMIT")
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", out + ".1"], capture_output=True,
                         text=True).stdout.splitlines()
    rows = [line for line in ann if line.strip()[:1].isdigit()]
    print("\n".join(rows[: a.top + 1]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
