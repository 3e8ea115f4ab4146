"""The core needs none of the optional dependencies: checked in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

OPTIONAL = ("redis", "rq", "ipywidgets", "graphviz", "openai")

SCRIPT = textwrap.dedent("""
    import json, sys
    import flownb
    import flownb.core.blueprint, flownb.engine.runtime, flownb.core.graph, flownb.engine.scheduler, flownb.core.events
    import flownb.core.registry, flownb.core.context, flownb.core.lint, flownb.core.conditions

    reg = flownb.Registry()
    reg.add("inc", lambda ctx: (ctx.input or 0) + 1)
    reg.add("pick", lambda ctx: flownb.Result(ctx.input, "big" if ctx.input > 1 else "small"))
    bp = flownb.Blueprint.from_dict({
        "id": "tiny",
        "nodes": [{"id": "a", "uses": "inc"}, {"id": "b", "uses": "inc"},
                  {"id": "p", "uses": "pick"}, {"id": "big", "uses": "inc"},
                  {"id": "small", "uses": "inc"}],
        "edges": [{"source": "a", "target": "b"}, {"source": "b", "target": "p"},
                  {"source": "p", "target": "big", "action": "big"},
                  {"source": "p", "target": "small", "action": "small",
                   "condition": "result.output >= 0"}],
    })
    assert bp.lint(reg) == [], bp.lint(reg)
    seen = []
    result = flownb.run(bp, registry=reg, on_event=seen.append)
    assert flownb.run(bp, registry=reg).outputs == result.outputs  # quiet path too
    print(json.dumps({
        "status": result.status,
        "outputs": result.outputs,
        "skipped": sorted(n for n, s in result.nodes.items() if s.status == "skipped"),
        "events": len(seen),
        "loaded": sorted(m for m in %r if m in sys.modules
                         or any(k.startswith(m + ".") for k in sys.modules)),
    }))
""" % (OPTIONAL,))


def test_core_imports_no_optional_dependency() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=str(ROOT), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "succeeded"
    assert report["outputs"] == {"a": 1, "b": 2, "p": 2, "big": 3}
    assert report["skipped"] == ["small"]
    assert report["events"] > 0
    assert report["loaded"] == [], f"the core imported optional modules: {report['loaded']}"


LAZY = textwrap.dedent("""
    import json, sys
    import flownb
    optional = %r
    before = sorted(m for m in optional if m in sys.modules)
    names = ["render", "llm", "notebook", "distributed"]
    listed = [n for n in names if n in dir(flownb)]
    mods = {n: getattr(flownb, n).__name__ for n in names}
    ok = [flownb.llm.configure is not None, callable(flownb.render.to_dot),
          flownb.notebook.LocalCluster.__name__ == "LocalCluster",
          flownb.distributed.DistributedExecutor.__name__ == "DistributedExecutor"]
    try:
        flownb.no_such_thing
        missing = "no error"
    except AttributeError as exc:
        missing = str(exc)
    print(json.dumps({"before": before, "mods": mods, "ok": ok, "listed": listed,
                      "missing": missing}))
""" % (OPTIONAL,))


def test_subpackages_resolve_as_attributes_after_import_flownb() -> None:
    """``import flownb; flownb.llm.configure(...)`` works, and the plain import still loads none
    of the optional dependencies (they come with the first use of a sub-package)."""
    proc = subprocess.run([sys.executable, "-c", LAZY], cwd=str(ROOT), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["before"] == []
    assert report["mods"] == {"render": "flownb.render", "llm": "flownb.llm",
                              "notebook": "flownb.notebook", "distributed": "flownb.distributed"}
    assert report["ok"] == [True, True, True, True]
    assert report["listed"] == ["render", "llm", "notebook", "distributed"]
    assert report["missing"] == "module 'flownb' has no attribute 'no_such_thing'"
