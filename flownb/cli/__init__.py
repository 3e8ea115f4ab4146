"""The cli layer, the top one: the ``flownb`` command (``flownb.cli:main``), its inspect and resume
subcommands (``inspection``, ``resume``) and ``flownb demo`` (``demo``). It may import every other
layer; nothing imports it except ``flownb.__main__``.

The ``flownb`` command line: validate blueprints, run workers, inspect runs, the demo.

Every failure prints one clear line (``flownb: error: …``) and exits non-zero; a traceback is
only for bugs in flownb itself. The inspection commands (``runs``, ``events``, ``cancel``,
``workers``) live in :mod:`flownb.cli.inspection`. Options that take a duration say its unit
(``--lease-ttl-s``); the spellings without it stay accepted as aliases.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

from .. import __version__
from ..core.errors import FlownbError, RunTimeout
from .inspection import _executor, add_inspect_commands, redis_opts, redis_url
from .resume import add_resume_command, report_waiting
from .controls import add_control_commands
from .stdio import STDIN, blueprint_from_stdin, quiet_broken_pipe, read_stdin, warning_printer
from .wait import run_in_process, wait_for_result

EXIT_PROBLEMS = 1
EXIT_USAGE = 2
#: Ctrl-C while waiting (the shell convention for SIGINT: 128 + 2)
EXIT_INTERRUPTED = 130
#: ``flownb run --timeout-s`` passed before the run ended (GNU ``timeout``'s status)
EXIT_TIMEOUT = 124


def _cmd_validate(args: argparse.Namespace) -> int:
    from ..core.library import Library, blueprint_files, load_dir
    from ..core.registry import default_registry

    if args.import_:
        sys.path.insert(0, os.getcwd())  # like `flownb run` and `flownb worker`
        default_registry.import_modules(args.import_)
    worst = 0
    report: list[dict[str, Any]] = []  # --json: one record per file
    for arg in args.files:
        # a folder is one library: every file is checked, subflow ids against the folder
        lib: Library | None = None
        paths = [arg]
        if os.path.isdir(arg):
            paths = blueprint_files(arg)
            try:
                lib = load_dir(arg)
            except FlownbError as exc:
                _say(args, report, {"path": arg, "ok": False, "error": str(exc)}, f"{exc}")
                worst = max(worst, EXIT_PROBLEMS)
                continue
            paths = [p for p in paths if p not in lib.skipped]
        for path in paths:
            worst = max(worst, _validate_file(path, args, lib, report))
    if args.json:
        print(json.dumps(report, indent=2))
    return worst


def _say(args: argparse.Namespace, report: list[dict[str, Any]], record: dict[str, Any],
         text: str | None, *, err: bool = True) -> None:
    """``validate``'s output: a record for ``--json``, else the line it always printed."""
    if args.json:
        report.append(record)
    elif text is not None:
        print(text, file=sys.stderr if err else sys.stdout)


def _validate_file(path: str, args: argparse.Namespace, lib: Any,
                   report: list[dict[str, Any]]) -> int:
    from ..core.blueprint import Blueprint
    from ..core.registry import default_registry

    try:
        bp = blueprint_from_stdin() if path == STDIN else Blueprint.load(path)
    except FlownbError as exc:
        _say(args, report, {"path": path, "ok": False, "error": str(exc)}, f"{exc}")
        return EXIT_PROBLEMS
    path = "<stdin>" if path == STDIN else path
    problems = bp.lint(default_registry if args.import_ or args.strict else None)
    if lib is not None:
        for n in bp.nodes:
            bid = n.params.get("blueprintId") if n.uses == "subflow" else None
            if bid is not None and str(bid) not in lib and not default_registry.has_blueprint(str(bid)):
                msg = (f"node {n.id!r}: subflow blueprint {str(bid)!r} is not in {lib.root} "
                       f"(ids: {sorted(lib)})")
                _say(args, report, {"path": path, "ok": False, "problems": [
                    {"code": "unknown-blueprint", "severity": "error", "location": f"node {n.id!r}",
                     "message": msg, "node_id": n.id}]},
                     f"{path}: error: {msg} [unknown-blueprint]", err=False)
                return EXIT_PROBLEMS
    errors = [p for p in problems if p.severity == "error"]
    failed = bool(errors or (args.strict and problems))
    if args.json:
        report.append({"path": path, "ok": not failed, "blueprint_id": bp.id,
                       "nodes": len(bp.nodes), "edges": len(bp.edges),
                       "problems": [{"code": p.code, "severity": p.severity,
                                     "location": p.location, "message": p.message,
                                     "node_id": p.node_id} for p in problems]})
        return EXIT_PROBLEMS if failed else 0
    for p in problems:
        print(f"{path}: {p}")
    if failed:
        return EXIT_PROBLEMS
    if not problems:
        print(f"{path}: ok ({len(bp.nodes)} nodes, {len(bp.edges)} edges)")
    return 0


def _cmd_worker(args: argparse.Namespace) -> int:
    from ..distributed.settings import RedisSettings, check_server
    from ..distributed.store import StoreSettings
    from ..distributed.visits import check_stop_grace
    from ..distributed.worker import make_worker
    from ..core.registry import default_registry

    url = args.redis or os.environ.get("FLOWNB_REDIS_URL") or os.environ.get("REDIS_URL")
    if not url:
        raise FlownbError("a worker needs a Redis to serve: --redis URL (or FLOWNB_REDIS_URL)")
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.watch_parent:
        from ..notebook.watchdog import watch_parent

        watch_parent()
    for path in args.path or ():
        sys.path.insert(0, os.path.abspath(path))
    sys.path.insert(0, os.getcwd())
    default_registry.import_modules(args.import_ or ())
    check_stop_grace(args.stop_grace)
    conn = RedisSettings.from_url(url).connect()
    check_server(conn)
    settings = StoreSettings(lease_ttl_s=args.lease_ttl, queued_ttl_s=max(args.lease_ttl * 2, 5.0),
                             result_ttl_s=args.result_ttl)
    if args.concurrency < 1:
        raise FlownbError(f"--concurrency must be at least 1, got {args.concurrency}")
    worker = make_worker(conn, name=args.name, queue_name=args.queue, prefix=args.prefix,
                         settings=settings, reap_interval_s=args.reap_interval,
                         concurrency=args.concurrency, stop_grace_s=args.stop_grace)
    print(f"flownb worker {worker.name} serving queue {args.queue!r} on {RedisSettings.from_url(url).masked_url} "
          f"(modules: {', '.join(args.import_ or ()) or 'none'}; {args.concurrency} visits at once)",
          flush=True)
    worker.work(burst=args.burst, logging_level=args.log_level.upper(), max_jobs=args.max_jobs)
    if worker.flownb.in_flight:
        # visits handed back at stop may still run in pool threads, which the interpreter
        # would join at exit (a 10-minute node: a 10-minute exit); their items are already
        # another worker's, so this process ends now, its output flushed
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(0)
    return 0


def _load_inputs(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if text == STDIN:
        text = read_stdin("--inputs")
    elif os.path.exists(text):
        with open(text) as fh:
            text = fh.read()
    try:
        data = json.loads(text)
    except RecursionError:
        raise FlownbError("--inputs is nested too deeply to read") from None
    except ValueError as exc:
        raise FlownbError(f"--inputs is not JSON (or a JSON file): {exc}") from None
    if not isinstance(data, dict):
        raise FlownbError("--inputs must be a JSON object")
    return data


def _load_for_run(target: str, inputs_arg: str | None) -> tuple[Any, dict[str, Any]]:
    """``flownb run``'s blueprint: a file (its folder's other blueprints registered for its
    subflows), or a shipped example's name (with its first sample input unless --inputs)."""
    from .. import examples
    from ..core.library import load_for_run

    inputs = _load_inputs(inputs_arg)
    if not os.path.exists(target) and target.replace("-", "_") in examples.EXAMPLES:
        bp = examples.load(target)
        if inputs_arg is None:
            inputs = examples.inputs(target)
            print(f"example {target!r} with its sample input {json.dumps(inputs)}", file=sys.stderr)
        return bp, inputs
    if os.path.isdir(target):
        raise FlownbError(f"{target} is a folder; name the blueprint file to run in it "
                          f"(its other files are loaded as its subflows)")
    if not os.path.exists(target) and not target.endswith((".json", ".yaml", ".yml")):
        raise FlownbError(f"no file {target!r} and no shipped example of that name (examples: "
                          f"{', '.join(examples.EXAMPLES)})")
    bp, lib = load_for_run(target)
    for path, problem in lib.broken.items():  # read only for a missing subflow: say, go on
        print(f"flownb: warning: skipped {path} while looking for subflows: {problem}",
              file=sys.stderr)
    return bp, inputs


def _cmd_run(args: argparse.Namespace) -> int:
    from ..core.registry import default_registry

    sys.path.insert(0, os.getcwd())
    default_registry.import_modules(args.import_ or ())
    bp, inputs = _load_for_run(args.file, args.inputs)
    on_redis = bool(redis_url(args)) and not args.in_process
    if any(str(n.uses).startswith("llm-") for n in bp.nodes):  # the fake answering for gpt-4o
        from ..llm.notice import print_notices  # flownb.llm only for a blueprint that uses it
        print_notices([bp], on_workers=on_redis)
    strict = not args.no_strict
    if on_redis:
        handle = _executor(args).submit(bp, inputs, strict=strict)
        print(f"submitted run {handle.run_id}", file=sys.stderr)
        if args.no_wait:
            print(handle.run_id)
            return 0
        try:
            res = wait_for_result(handle, args.timeout, sys.stderr)
        except KeyboardInterrupt:
            return _interrupted(handle, keep_running=args.keep_running)
        except RunTimeout as exc:
            print(json.dumps({"run_id": handle.run_id, "status": "running", "output": None,
                              "error": None}, indent=2))
            print(f"flownb: timeout: run {handle.run_id} {exc.message} — follow it with flownb "
                  f"events {handle.run_id} --follow, or stop it with flownb cancel "
                  f"{handle.run_id}", file=sys.stderr)
            return EXIT_TIMEOUT
    else:
        ran = run_in_process(bp, inputs, args.timeout, strict=strict)
        if ran is None:
            return EXIT_INTERRUPTED
        res, timed_out = ran
        if timed_out:
            print(json.dumps({"run_id": res.run_id, "status": "cancelled", "output": res.output,
                              "error": res.error}, indent=2, default=str))
            print(f"flownb: timeout: run {res.run_id} was still running after {args.timeout}s "
                  "and was cancelled (in process, nothing goes on without this command)",
                  file=sys.stderr)
            return EXIT_TIMEOUT
    print(json.dumps({"run_id": res.run_id, "status": res.status, "output": res.output,
                      "error": res.error}, indent=2, default=str))
    if res.status == "waiting":  # parked on a wait/approval node: say what, and how to answer
        return report_waiting(res, on_redis=on_redis)
    return 0 if res.ok else EXIT_PROBLEMS


def _interrupted(handle: Any, *, keep_running: bool) -> int:
    """Ctrl-C while waiting on a distributed run: cancel it (the default) or leave it running.

    A user who presses Ctrl-C means "stop"; without this the run would go on on the workers
    with nobody waiting for it. ``--keep-running`` is for "I only wanted my prompt back".
    """
    if keep_running:
        print(f"interrupted: run {handle.run_id} goes on on the workers "
              f"(flownb events {handle.run_id} --follow; flownb cancel {handle.run_id})",
              file=sys.stderr)
    else:
        handle.cancel()
        print(f"interrupted: run {handle.run_id} cancelled (no node starts after this; "
              "use --keep-running to leave a run going on Ctrl-C)", file=sys.stderr)
    return EXIT_INTERRUPTED


def _cmd_cache(args: argparse.Namespace) -> int:
    from ..llm.cache import DiskCache

    cache = DiskCache(args.dir) if args.dir else DiskCache()
    removed = cache.clear()
    print(f"removed {removed} cached LLM answer(s) from {cache.directory}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(workers=args.workers, example=args.example, out=args.out, text=args.text)


def build_parser() -> argparse.ArgumentParser:
    from ..distributed.visits import DEFAULT_CONCURRENCY, DEFAULT_STOP_GRACE_S  # imports no redis/rq

    p = argparse.ArgumentParser(prog="flownb", description="Declarative AI-agent workflows, in "
                                "process or on Redis with RQ workers.")
    p.add_argument("--version", action="version", version=f"flownb {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)

    v = sub.add_parser("validate", help="check blueprint files; every problem with its location")
    v.add_argument("files", nargs="+", metavar="PATH",
                   help="blueprint files, folders (one library each), or - for a blueprint on "
                        "standard input")
    v.add_argument("--import", dest="import_", action="append", metavar="MODULE",
                   help="import node modules (from the current folder too) so unknown 'uses' "
                        "can be checked (repeatable)")
    v.add_argument("--strict", action="store_true", help="warnings fail too")
    v.add_argument("--json", action="store_true",
                   help="a JSON list: per file {path, ok, blueprint_id, nodes, edges, problems}")
    v.set_defaults(fn=_cmd_validate)

    w = sub.add_parser("worker", help="run an RQ worker that executes flownb nodes")
    redis_opts(w)
    w.add_argument("--import", dest="import_", action="append", metavar="MODULE",
                   help="module registering node types (repeatable)")
    w.add_argument("--path", action="append", metavar="DIR",
                   help="directory to put on sys.path (repeatable)")
    w.add_argument("--name", help="worker name (default: host-pid)")
    w.add_argument("--burst", action="store_true", help="quit when the queue is empty")
    w.add_argument("--max-jobs", type=int, default=None, metavar="N",
                   help="quit after N jobs (default: never)")
    w.add_argument("--lease-ttl-s", "--lease-ttl", dest="lease_ttl", type=float, default=10.0,
                   metavar="SECONDS",
                   help="seconds before a silent worker's node is re-run elsewhere (default 10)")
    w.add_argument("--reap-interval-s", "--reap-interval", dest="reap_interval", type=float,
                   default=1.0, metavar="SECONDS",
                   help="how often this worker looks for expired leases to re-queue (default 1)")
    w.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                   help="node visits this worker runs at once: async nodes share one event loop, "
                        f"sync nodes a pool of N threads (default {DEFAULT_CONCURRENCY}: LLM-bound "
                        "agents wait on the network; use less, e.g. 8, for nodes that compute)")
    w.add_argument("--stop-grace-s", dest="stop_grace", type=float, default=DEFAULT_STOP_GRACE_S,
                   metavar="SECONDS",
                   help="on SIGTERM / Ctrl-C, seconds the nodes in flight get to finish before "
                        "they are handed back to other workers (default "
                        f"{DEFAULT_STOP_GRACE_S:g})")
    w.add_argument("--result-ttl-s", "--result-ttl", dest="result_ttl", type=int, default=86400,
                   metavar="SECONDS",
                   help="seconds a finished run's state and events are kept, for runs this "
                        "worker starts (child runs) (default 86400)")
    w.add_argument("--log-level", default="WARNING",
                   help="DEBUG, INFO, WARNING or ERROR (default WARNING)")
    w.add_argument("--watch-parent", action="store_true",
                   help="exit when the parent process dies (used by LocalCluster)")
    w.set_defaults(fn=_cmd_worker)

    add_inspect_commands(sub)

    add_resume_command(sub)
    add_control_commands(sub)

    rn = sub.add_parser("run", help="run a blueprint file (in process, or on --redis)")
    redis_opts(rn)
    rn.add_argument("file", help="a blueprint file (other files of its folder are its subflows), "
                                 "or a shipped example: blog_post, job_application, "
                                 "customer_review, content_moderation")
    rn.add_argument("--inputs", help="the run's inputs: a JSON object, a JSON file, or - for "
                                   "standard input")
    rn.add_argument("--import", dest="import_", action="append", metavar="MODULE",
                    help="module registering node types, from the current folder too "
                         "(repeatable)")
    rn.add_argument("--in-process", action="store_true",
                    help="run here even when FLOWNB_REDIS_URL is set")
    rn.add_argument("--timeout-s", "--timeout", dest="timeout", type=float, default=None,
                    metavar="SECONDS",
                    help="stop waiting after this long and exit 124: on Redis the run goes on, "
                         "in process it is cancelled")
    rn.add_argument("--no-wait", action="store_true",
                    help="on Redis: print the run id and return at once")
    rn.add_argument("--no-strict", action="store_true",
                    help="run a blueprint with lint errors that make a run silently wrong "
                         "(an unknown param, a condition reading a key nothing writes, router "
                         "routes without edges), printing them as warnings instead of refusing")
    rn.add_argument("--keep-running", action="store_true",
                    help="on Redis: Ctrl-C stops waiting but leaves the run going (default: "
                         "Ctrl-C cancels the run)")
    rn.set_defaults(fn=_cmd_run)

    ca = sub.add_parser("cache", help="the LLM response cache on disk")
    ca.add_argument("action", choices=["clear"], help="clear: delete every cached answer")
    ca.add_argument("--dir", help="cache folder (default: FLOWNB_LLM_CACHE_DIR or ~/.cache/flownb/llm)")
    ca.set_defaults(fn=_cmd_cache)

    d = sub.add_parser("demo", help="the content-moderation agent on an embedded Redis with two "
                       "local workers (offline unless OPENAI_API_KEY is set)")
    d.add_argument("--workers", type=int, default=2, metavar="N",
                   help="worker processes to start (default 2)")
    d.add_argument("--example", default="content_moderation",
                   help="shipped example to run (default content_moderation)")
    d.add_argument("--out", default="demo-output", metavar="DIR",
                   help="where the graph and worker logs go (default demo-output)")
    d.add_argument("--text", default=None, help="the content to moderate")
    d.set_defaults(fn=_cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from ..llm.config import load_dotenv_once

    load_dotenv_once()  # ./.env (OPENAI_*, FLOWNB_*), never overriding what is already set
    try:
        with warnings.catch_warnings():
            warnings.showwarning = warning_printer(warnings.showwarning)
            code = int(args.fn(args) or 0)
        sys.stdout.flush()  # a reader gone before the last, buffered, line: caught here too
        return code
    except FlownbError as exc:
        print(f"flownb: error: {exc}", file=sys.stderr)
        return EXIT_PROBLEMS
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `flownb events RUN | head`: the reader has what it wanted
        return quiet_broken_pipe()


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
