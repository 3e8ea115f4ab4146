"""``flownb pause / resume-run / patch-state / retry / skip``: the run controls on the command line.

Each verb attaches to a run on Redis (the same ``--redis`` / ``--queue`` / ``--prefix`` as
``flownb cancel``), calls the :class:`~flownb.distributed.client.RunHandle` control and prints one
line (or, with ``--json``, one JSON object with the run's new status). A refusal is a
:class:`~flownb.engine.controls.RunControlError`: ``flownb: error: …`` naming the run, the node and
the fix, exit code 1, like every other failure of the CLI.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .inspection import _command, _executor
from .stdio import STDIN, read_stdin

__all__ = ["add_control_commands"]


def _done(args: argparse.Namespace, handle: Any, what: str, **extra: Any) -> int:
    status = handle.status()
    if args.json:
        print(json.dumps({"run_id": args.run_id, "done": what, "status": status, **extra},
                         default=str))
    else:
        print(f"{what}; run {args.run_id} is {status}")
    return 0


def _cmd_pause(args: argparse.Namespace) -> int:
    handle = _executor(args).attach(args.run_id)
    handle.pause(by=args.by)
    return _done(args, handle, "paused (visits in flight finish; no new visit starts)")


def _cmd_resume_run(args: argparse.Namespace) -> int:
    handle = _executor(args).attach(args.run_id)
    handle.resume_run(by=args.by)
    return _done(args, handle, "resumed")


def _json_arg(text: str, what: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(read_stdin(what) if text == STDIN else text)
    except RecursionError:
        print(f"flownb: error: {what} is nested too deeply to read", file=sys.stderr)
    except ValueError as exc:
        print(f"flownb: error: {what} is not JSON ({exc}); quote text as JSON, e.g. '\"yes\"'",
              file=sys.stderr)
    return False, None


def _cmd_patch_state(args: argparse.Namespace) -> int:
    values: dict[str, Any] = {}
    for pair in args.set or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            print(f"flownb: error: --set {pair!r} is not KEY=JSON (e.g. --set retries=3 or "
                  "--set note='\"checked\"')", file=sys.stderr)
            return 2
        ok, values[key] = _json_arg(raw, f"--set {key}")
        if not ok:
            return 2
    if not values:
        print("flownb: error: nothing to patch: give --set KEY=JSON at least once", file=sys.stderr)
        return 2
    handle = _executor(args).attach(args.run_id)
    handle.patch_state(values, by=args.by)
    return _done(args, handle, f"patched {', '.join(sorted(values))}", keys=sorted(values))


def _cmd_retry(args: argparse.Namespace) -> int:
    handle = _executor(args).attach(args.run_id)
    handle.retry(args.node, by=args.by)
    return _done(args, handle, f"retrying {args.node} in place", node=args.node)


def _cmd_skip(args: argparse.Namespace) -> int:
    ok, output = _json_arg(args.output, "--output") if args.output is not None else (True, None)
    if not ok:
        return 2
    handle = _executor(args).attach(args.run_id)
    handle.skip(args.node, output=output, by=args.by)
    return _done(args, handle, f"skipped {args.node} (marked completed by hand)", node=args.node)


def _common(sp: argparse.ArgumentParser) -> None:
    sp.add_argument("--by", default=None, help="who acts, for the run's history (default user@host)")
    sp.add_argument("--json", action="store_true", help="a JSON object {run_id, done, status}")


def add_control_commands(sub: Any) -> None:
    """Register ``pause``, ``resume-run``, ``patch-state``, ``retry`` and ``skip``."""
    p = _command(sub, "pause", "pause a run: no new visit starts, visits in flight finish, no "
                 "worker is held", _cmd_pause, run_id=True)
    _common(p)
    r = _command(sub, "resume-run", "continue a paused run (flownb resume answers a waiting node)",
                 _cmd_resume_run, run_id=True)
    _common(r)
    ps = _command(sub, "patch-state", "merge values into a paused or waiting run's state",
                  _cmd_patch_state, run_id=True)
    ps.add_argument("--set", action="append", metavar="KEY=JSON",
                    help="a state key and its new value as JSON (repeatable; '-' after = reads "
                         "stdin)")
    _common(ps)
    rt = _command(sub, "retry", "re-run a node of a failed or cancelled run in place",
                  _cmd_retry, run_id=True)
    rt.add_argument("node", help="the node to run again (the nodes after it run again too)")
    _common(rt)
    sk = _command(sub, "skip", "mark a failed, waiting or queued node completed by hand",
                  _cmd_skip, run_id=True)
    sk.add_argument("node", help="the node to mark completed")
    sk.add_argument("--output", metavar="JSON", default=None,
                    help="the node's output as JSON (default null; '-': read it from stdin)")
    _common(sk)
