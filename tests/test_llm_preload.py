"""A worker imports what the first LLM request would import before its loop runs visits
(:mod:`flownb.llm.preload`): on the loop, every visit in flight waited for those imports."""

from __future__ import annotations

import json
import subprocess
import sys


def test_preload_imports_the_client_and_what_its_first_request_imports() -> None:
    code = ("import json, sys; from flownb.llm.preload import preload; "
            "before = 'anyio._backends._asyncio' in sys.modules; done = preload(); "
            "print(json.dumps([before, done, sorted(m for m in done if m in sys.modules)]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    before, done, loaded = json.loads(out.strip().splitlines()[-1])
    assert before is False  # import flownb.llm.preload alone imports none of it
    assert {"openai", "flownb.llm.nodes", "anyio._backends._asyncio"} <= set(done)
    assert loaded == sorted(done)


def test_the_loop_thread_imports_before_its_first_callback_runs() -> None:
    """A worker's loop runs nothing before the imports: the first visit handed over finds them
    done, and the thread that handed it over did not wait for them."""
    code = ("import asyncio, json, sys, threading, time; "
            "from flownb.llm.preload import run_after_preload; "
            "loop = asyncio.new_event_loop(); seen = []; done = threading.Event(); "
            "t = threading.Thread(target=run_after_preload, args=(loop,), daemon=True); "
            "t0 = time.perf_counter(); t.start(); "
            "loop.call_soon_threadsafe(lambda: (seen.append('openai' in sys.modules and "
            "'anyio._backends._asyncio' in sys.modules), done.set())); "
            "handed = time.perf_counter() - t0; done.wait(60); "
            "loop.call_soon_threadsafe(loop.stop); t.join(5); "
            "print(json.dumps([seen, handed, t.is_alive()]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=90).stdout
    seen, handed, alive = json.loads(out.strip().splitlines()[-1])
    assert seen == [True]
    assert handed < 0.5  # handing over did not wait for the imports (~1 s)
    assert alive is False  # the loop stopped when asked
