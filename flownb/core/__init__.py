"""The core layer: flownb's data model, which everything else builds on.

It owns what a workflow *is* — the blueprint model and its loading (``blueprint``, ``library``,
``jsondata``, ``files``, ``limits``), the compiled graph and its lint (``graph``, ``lint``,
``lint_names``), the node registry, conditions (``conditions/``), templates, input transforms,
state reducers, what a node sees (``context``), the run result, errors, events, answers to waiting
nodes, the display and executor registries (``display``, ``executors``) and small shared helpers
(``aio``, ``extras``). It may import only the standard library, pydantic and PyYAML and itself —
never ``flownb.engine``, ``flownb.render``, ``flownb.llm``, ``flownb.distributed``,
``flownb.notebook`` or ``flownb.cli``, nor redis, rq, ipywidgets, IPython, graphviz or openai (the
``[tool.importlinter]`` contracts in pyproject.toml check this). Where a core class offers a
convenience that a higher layer implements (drawing a blueprint, forking a run, showing a result in
a notebook), it calls through a registry in this layer that the higher layer fills when imported.
"""
