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
