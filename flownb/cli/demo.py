"""``make demo`` / ``flownb demo``: an agent run distributed, end to end, on this machine.

Starts a private redis-server, two ``flownb worker`` processes, submits the content-moderation
agent (offline fake model unless OPENAI_API_KEY is set), shows a terminal progress bar fed by
the run's Redis event stream, prints the result and writes the run's coloured graph as SVG.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .. import examples
from ..core.events import NODE_FAILED, NODE_SKIPPED, NODE_SUCCEEDED, TERMINAL
from ..render import states_from_events, to_dot, to_svg


def _start_workers(url: str, n: int, log_dir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        log = open(log_dir / f"worker-{i + 1}.log", "wb")
        cmd = [sys.executable, "-m", "flownb", "worker", "--redis", url, "--name",
               f"demo-worker-{i + 1}-{os.getpid()}", "--log-level", "WARNING"]
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    return procs


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)


def main(*, workers: int = 2, example: str = "content_moderation", out: str = "demo-output",
         text: str | None = None) -> int:
    from ..core.extras import require

    tqdm = require("tqdm", "flownb demo", extra="demo").tqdm

    from ..distributed.client import DistributedExecutor
    from ..distributed.server import EmbeddedRedis
    from ..llm import describe

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    bp = examples.load(example)
    cases = examples.cases(example)
    inputs: dict[str, Any] = {"text": text} if text else examples.inputs(example, "redact" if "redact" in cases else None)
    print(f"flownb demo: {bp.id} — {bp.description.strip() if bp.description else ''}")
    print(describe())
    with EmbeddedRedis() as server:
        print(f"Redis: private redis-server (pid {server.pid}) at {server.url}")
        procs = _start_workers(server.url, workers, out_dir)
        try:
            ex = DistributedExecutor(server.url)
            deadline = time.monotonic() + 30
            while len(ex.workers()) < workers and time.monotonic() < deadline:
                time.sleep(0.05)
            print(f"workers: {', '.join(sorted(ex.workers()))}")
            print(f"inputs: {inputs}")
            handle = ex.submit(bp, inputs)
            print(f"submitted run {handle.run_id}; following its event stream")
            events = []
            with tqdm(total=len(bp.nodes), unit="node", desc=bp.id, file=sys.stdout,
                      dynamic_ncols=True) as bar:
                for e in handle.events(follow=True, timeout=120):
                    events.append(e)
                    if e.type in (NODE_SUCCEEDED, NODE_SKIPPED, NODE_FAILED):
                        bar.update(1)
                        bar.set_postfix_str(f"{e.type.split('_')[1]} {e.node_id}")
                    if e.type in TERMINAL:
                        break
            res = handle.result(timeout=60, raise_on_error=False)
            print(f"\nresult: {res.status} in {res.duration_s:.2f}s")
            ran = [n for n, s in res.nodes.items() if s.status == "succeeded"]
            skipped = [n for n, s in res.nodes.items() if s.status == "skipped"]
            print(f"  ran:     {', '.join(ran)}")
            print(f"  skipped: {', '.join(skipped) or '-'}")
            for n in ran:
                s = res.nodes[n]
                print(f"    {n:<14} {s.duration_s * 1000:8.1f} ms  on {s.worker}")
            if res.error:
                print(f"  error: {res.error.get('node_id')}: {res.error.get('message')}")
            print(f"\nfinal output:\n  {res.output}")
            states = states_from_events(events)
            svg = to_svg(bp, states=states)
            if svg is not None:
                path = out_dir / "run.svg"
                path.write_text(svg)
            else:
                path = out_dir / "run.dot"
                path.write_text(to_dot(bp, states=states))
                print("(graphviz 'dot' not found: wrote DOT text instead of SVG; "
                      "apt-get install graphviz for a drawing)")
            print(f"graph of the run, coloured by node state: {path}")
            print(f"worker logs: {out_dir}/worker-*.log")
            return 0 if res.ok else 1
        finally:
            _stop(procs)
