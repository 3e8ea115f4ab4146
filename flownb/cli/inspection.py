"""The inspection commands of the ``flownb`` CLI: ``runs``, ``events``, ``cancel``, ``workers``.

They read the Redis the workers serve, so unlike ``flownb run`` they never fall back to a
private embedded server: an empty server would answer "no runs" — a silent wrong answer — when
the user simply forgot ``--redis``. Without a URL they fail naming the two ways to give one.
Kept apart from :mod:`flownb.cli` so that module stays about building the parser.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from ..core.errors import FlownbError

#: seconds after which a worker that stopped publishing its heartbeat is shown as ``stale``
STALE_AFTER_S = 30.0
#: run-meta fields that hold numbers / JSON documents (everything in a Redis hash is a string)
_NUMBER_FIELDS = ("created_at", "finished_at")
_INT_FIELDS = ("ttl",)
_JSON_FIELDS = ("bundle", "input_keys", "error")


def redis_opts(sp: argparse.ArgumentParser) -> None:
    """``--redis`` / ``--queue`` / ``--prefix``, the same on every command that talks to Redis."""
    sp.add_argument("--redis", metavar="URL",
                    help="redis://, rediss:// or unix:// URL of the Redis the workers serve "
                         "(default: $FLOWNB_REDIS_URL, then $REDIS_URL)")
    sp.add_argument("--queue", default="flownb", help="RQ queue name (default: flownb)")
    sp.add_argument("--prefix", default="flownb",
                    help="prefix of flownb's Redis keys (default: flownb)")


def redis_url(args: argparse.Namespace) -> str | None:
    """``--redis``, else ``FLOWNB_REDIS_URL``, else ``REDIS_URL``; None when none is set."""
    for value in (getattr(args, "redis", None), os.environ.get("FLOWNB_REDIS_URL"),
                  os.environ.get("REDIS_URL")):
        if value and value.strip():
            return value.strip()
    return None


def _executor(args: argparse.Namespace) -> Any:
    from ..distributed.client import DistributedExecutor

    url = redis_url(args)
    if url is None:
        raise FlownbError(
            f"'flownb {args.cmd}' reads the Redis your workers serve, and none was given: pass "
            "--redis redis://HOST:6379/0 or set FLOWNB_REDIS_URL")
    return DistributedExecutor(url, prefix=args.prefix, queue_name=args.queue)


def typed_meta(meta: dict[str, str]) -> dict[str, Any]:
    """A run's meta hash with numbers as numbers and JSON fields parsed (for ``--json``)."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        if k == "parent" and not v:
            continue
        if k in _NUMBER_FIELDS:
            out[k] = float(v) if v else None
        elif k in _INT_FIELDS:
            out[k] = int(float(v)) if v else None
        elif k in _JSON_FIELDS:
            try:
                out[k] = json.loads(v) if v else None
            except ValueError:
                out[k] = v  # keep what is stored rather than hide it
        else:
            out[k] = v
    created, finished = out.get("created_at"), out.get("finished_at")
    out["duration_s"] = round(finished - created, 6) if created and finished else None
    return out


def _cmd_runs(args: argparse.Namespace) -> int:
    rows = _executor(args).runs(args.limit)
    if args.json:
        print(json.dumps([typed_meta(m) for m in rows], indent=2))
        return 0
    if not rows:
        print("no runs")
        return 0
    print(f"{'run id':<14} {'blueprint':<28} {'status':<10} {'started':<20} {'duration':>9}")
    for m in rows:
        t = typed_meta(m)
        dur = f"{t['duration_s']:.2f}s" if t["duration_s"] is not None else "-"
        created = t.get("created_at")
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created)) if created else "-"
        print(f"{m['run_id']:<14} {m.get('blueprint_id', '')[:28]:<28} {m.get('status', ''):<10} "
              f"{when:<20} {dur:>9}")
    return 0


def _cmd_events(args: argparse.Namespace) -> int:
    handle = _executor(args).attach(args.run_id)
    for e in handle.events(follow=args.follow, timeout=args.timeout):
        if args.json:
            print(json.dumps({"id": e.id, "type": e.type, "run_id": e.run_id, "node_id": e.node_id,
                              "ts": e.ts, "data": e.data}, default=str), flush=True)
        else:
            print(f"{time.strftime('%H:%M:%S', time.localtime(e.ts))} {e}", flush=True)
    return 0


def _cmd_cancel(args: argparse.Namespace) -> int:
    handle = _executor(args).attach(args.run_id)
    print("cancelled" if handle.cancel() else f"not running ({handle.status()})")
    return 0


def worker_rows(ex: Any) -> list[dict[str, Any]]:
    """Every worker that published a heartbeat under this prefix, stale ones included."""
    raw = ex.conn.hgetall(ex.store.keys.workers)
    now = time.time()
    rows = []
    for name, blob in raw.items():
        try:
            info = json.loads(blob)
        except ValueError:
            info = {}
        seen = float(info.get("seen") or 0)
        row = {"name": name.decode() if isinstance(name, bytes) else name, **info,
               "seen_s_ago": round(now - seen, 3) if seen else None}
        if not seen or now - seen >= STALE_AFTER_S:
            row["state"] = "stale"
        rows.append(row)
    return sorted(rows, key=lambda r: r["name"])


def queue_rows(ex: Any) -> list[dict[str, Any]]:
    """Every RQ queue on this Redis with its queued / started / failed job counts."""
    from rq import Queue

    queues = {q.name: q for q in Queue.all(connection=ex.conn)}
    queues.setdefault(ex.queue.name, ex.queue)
    return [{"queue": name, "queued": q.count, "started": q.started_job_registry.count,
             "failed": q.failed_job_registry.count} for name, q in sorted(queues.items())]


def _cmd_workers(args: argparse.Namespace) -> int:
    ex = _executor(args)
    workers, queues = worker_rows(ex), queue_rows(ex)
    if args.json:
        print(json.dumps({"workers": workers, "queues": queues}, indent=2, default=str))
        return 0
    live = sum(1 for w in workers if w.get("state") != "stale")
    from ..distributed.settings import mask_url

    print(f"{live} live worker(s) under prefix {ex.prefix!r} on {mask_url(ex.url)}")
    for w in workers:
        cur = f" running {w['current']}" if w.get("current") else ""
        print(f"  {w['name']:<32} {str(w.get('state', '?')):<8} pid {w.get('pid', '?')} on "
              f"{w.get('host', '?')}, {w.get('jobs', 0)} jobs, {w.get('nodes', 0)} nodes{cur}")
    print("queues:")
    for q in queues:
        print(f"  {q['queue']:<24} {q['queued']} queued, {q['started']} started, "
              f"{q['failed']} failed")
    return 0


def _command(sub: Any, name: str, help: str, fn: Any, *, run_id: bool = False) -> Any:
    """A sub-command reading Redis: its parser with the Redis options (and a run id)."""
    sp = sub.add_parser(name, help=help)
    redis_opts(sp)
    if run_id:
        sp.add_argument("run_id", help="the run's id (printed by submit, listed by 'flownb runs')")
    sp.set_defaults(fn=fn)
    return sp


def add_inspect_commands(sub: Any) -> None:
    """Register ``runs``, ``events``, ``cancel`` and ``workers`` on the CLI's sub-parsers."""
    r = _command(sub, "runs", "recent runs with status", _cmd_runs)
    r.add_argument("--limit", type=int, default=20, help="how many runs, newest first (default 20)")
    r.add_argument("--json", action="store_true",
                   help="a JSON list with typed values (numbers, lists, the error object)")

    e = _command(sub, "events", "a run's events (--follow to stream them live)", _cmd_events,
                 run_id=True)
    e.add_argument("--follow", "-f", action="store_true",
                   help="keep streaming new events until the run ends")
    e.add_argument("--timeout-s", "--timeout", dest="timeout", type=float, default=None,
                   metavar="SECONDS", help="with --follow: stop after this long (default: never)")
    e.add_argument("--json", action="store_true",
                   help="one JSON object per line (id, type, run_id, node_id, ts, data)")

    _command(sub, "cancel", "cancel a run on every worker", _cmd_cancel, run_id=True)

    w = _command(sub, "workers", "live workers, their state and the queue lengths (like 'rq info')",
                 _cmd_workers)
    w.add_argument("--json", action="store_true", help="a JSON object {workers, queues}")


__all__ = ["add_inspect_commands", "redis_opts", "redis_url", "typed_meta", "worker_rows",
           "queue_rows"]
