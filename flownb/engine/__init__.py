"""The engine layer: running a blueprint in this process.

It owns the in-process runtime (``runtime``), the attempt policy shared with the distributed
worker (``attempt``), the scheduler, the built-in nodes, waiting for a person (``waiting``), run
history and fork (``history``), streaming (``stream``) and batches (``batch``, ``batch_stats``).
It may import :mod:`flownb.core` and the standard library — never ``flownb.render``,
``flownb.llm``, ``flownb.distributed``, ``flownb.notebook`` or ``flownb.cli``, nor redis, rq,
ipywidgets, IPython, graphviz or openai. Another executor (the distributed one) reuses the
engine's pieces; the engine reaches that executor only through the interface in
:mod:`flownb.core.executors`, which each executor implements.
"""

from ..core.registry import add_lazy_builtin as _add

# the engine's built-in node types, imported on first use (flownb.core.registry)
for _name, _target in {
    "noop": "flownb.engine.builtins:noop",
    "passthrough": "flownb.engine.builtins:passthrough",
    "sleep": "flownb.engine.builtins:sleep",
    "wait": "flownb.engine.waiting:wait_node",      # pause for a person (flownb.engine.waiting)
    "approval": "flownb.engine.waiting:wait_node",
    "set": "flownb.engine.builtins:set_state",
    "output": "flownb.engine.builtins:output",
    "fail": "flownb.engine.builtins:fail",
}.items():
    _add(_name, _target)
