"""``flownb resume``: answer a run waiting for a person (see :mod:`flownb.engine.waiting`).

Kept beside :mod:`flownb.cli.inspection` (which reads runs) because it is the one command that
*writes* a waiting run's answer; ``flownb run`` uses :func:`print_waiting` to say what a run it
started waits for.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .inspection import _command, _executor

#: ``flownb run`` exits with this when the run parked on a wait/approval node (not a failure:
#: it goes on after ``flownb resume``)
EXIT_WAITING = 3


def describe_wait(w: dict[str, Any]) -> str:
    """One line for a waiting visit: node, visit, prompt and what answer it takes."""
    ask = f"choices {w['choices']}" if w.get("choices") else (
        f"schema {json.dumps(w['schema'])}" if w.get("schema") else "any JSON value")
    return f"{w['node']} (visit {w['visit']}): {w.get('prompt') or '(no prompt)'} — {ask}"


def print_waiting(run_id: str, rows: list[dict[str, Any]], *, file: Any = None) -> None:
    """What a run waits for, and the exact command answering each wait."""
    out = file if file is not None else sys.stdout
    for w in rows:
        print(f"waiting: {describe_wait(w)}", file=out)
        example = json.dumps(w["choices"][0]) if w.get("choices") else "'<value>'"
        if w.get("choices"):
            example = "'" + example + "'"
        print(f"  resume with: flownb resume {run_id} {w['node']} --json {example}", file=out)


def report_waiting(res: Any, *, on_redis: bool) -> int:
    """``flownb run`` ended on a parked run: print what it waits for on stderr (stdout keeps
    the JSON) and return :data:`EXIT_WAITING`."""
    rows = res.waiting() if res._run is not None else []
    print(f"run {res.run_id} is waiting for a person", file=sys.stderr)
    print_waiting(res.run_id, rows, file=sys.stderr)
    if not on_redis:
        print("  (this run was in process and ends with this command: run it on --redis / "
              "FLOWNB_REDIS_URL to answer it later with flownb resume, or resume it from Python "
              "with result.resume(node, value))", file=sys.stderr)
    return EXIT_WAITING


def _cmd_resume(args: argparse.Namespace) -> int:
    """Answer a run waiting for a person; without NODE (or a value), show what it waits for."""
    handle = _executor(args).attach(args.run_id)
    if args.node is None or (args.json is None and args.value is None):
        rows = handle.waiting()
        if not rows:
            print(f"run {args.run_id} waits for nothing ({handle.status()})")
            return 1
        for w in rows:
            print(describe_wait(w))
        print("answer with: flownb resume RUN NODE --json '<value>'  (or --value TEXT)")
        return 0 if args.node is None else 2
    if args.json is not None:
        try:
            value = json.loads(args.json)
        except ValueError as exc:
            print(f"flownb: error: --json is not JSON ({exc}); for plain text use --value",
                  file=sys.stderr)
            return 1
    else:
        value = args.value
    handle.resume(args.node, value, visit=args.visit)
    print(f"resumed {args.node}; run {args.run_id} is {handle.status()}")
    return 0


def add_resume_command(sub: Any) -> None:
    """Register ``resume`` on the CLI's sub-parsers."""
    rs = _command(sub, "resume", "answer a run waiting for a person (a wait/approval node)",
                  _cmd_resume, run_id=True)
    rs.add_argument("node", nargs="?", help="the waiting node (omit to list what the run waits for)")
    rs.add_argument("--json", help="the answer as JSON, e.g. '\"approve\"' or '{\"action\": \"edit\"}'")
    rs.add_argument("--value", help="the answer as plain text (e.g. a choice: approve)")
    rs.add_argument("--visit", type=int, default=None, help="which visit, if several wait")


__all__ = ["EXIT_WAITING", "add_resume_command", "describe_wait", "print_waiting",
           "report_waiting"]
