"""The built-in LLM node types: ``llm-process``, ``llm-condition`` and ``llm-router``.

They are ``async def`` node functions: a model call is a network wait, and on an event loop
hundreds of them are in flight at once over one shared connection pool
(:func:`flownb.llm.client.async_client`) instead of each holding a thread. They are looked up
lazily by name (``flownb.core.registry.add_lazy_builtin``, called by ``flownb/__init__.py``) so that ``import flownb`` never imports
this package, let alone ``openai``.

Params shared by all three (see :mod:`flownb.llm.config` for how unset ones are resolved):

``prompt``       template with ``{{var}}`` slots, filled from the node's input, the run's state
                 and node outputs (defaults to the input itself when that is a string);
                 ``promptTemplate`` (Flowcraft's name) is the same
``inputs``       Flowcraft's mapping ``{var: source}``: a node id (its output), a state key, or a
                 list of candidates (the first with a value); mapped variables fill the template
``rpm``, ``tpm`` requests / tokens per minute for this node's model (see ``ratelimit``)
``system``       system message (also a template)
``model``, ``temperature``, ``max_tokens``, ``base_url``
``max_retries``  SDK retries on 429 / 5xx / timeouts / connection errors (default 2)
``timeout_s``    HTTP timeout of one request in seconds (default 60)
``stream``       stream the answer, emitting ``llm_token`` events (≤ 10/s)
``cache``        ``false`` to bypass the response cache for this node
``backend``      ``"fake"`` or ``"openai"`` to force one for this node
``api_key_env``  name of the environment variable holding this node's API key
``key``          also write the output into the run's state under this key (``outputKey`` too)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.context import NodeContext
from ..core.errors import NodeError
from ..core.registry import Result
from ..core.templates import mapped_inputs, node_template, render_template, template_vars
from .client import Completion
from .config import resolve
from .runner import agenerate, build_messages

_VAR = re.compile(r"\{\{\s*[A-Za-z_][\w.\-]*\s*\}\}")

CONDITION_SUFFIX = "\n\nAnswer with exactly one word: true or false."
_TRUE = re.compile(r"^(yes|true)\b")
_FALSE = re.compile(r"^(no|false)\b")
_EDGE_CHARS = " \t\r\n'\"`*_.,;:!?()[]{}<>"


def _error(ctx: NodeContext, message: str) -> NodeError:
    return NodeError(message, node_id=ctx.node_id, run_id=ctx.run_id, attempt=ctx.attempt)


def _prompt_template(ctx: NodeContext) -> str:
    name = "promptTemplate" if ctx.params.get("prompt") is None else "prompt"
    template = node_template(ctx.params, ("prompt", "promptTemplate"))
    if template is None:
        if isinstance(ctx.input, str):
            return "{{input}}"
        raise _error(ctx, "an LLM node needs params.prompt or params.promptTemplate (a template "
                          "such as 'Summarise {{text}}'), or a string input to use as the prompt")
    if not isinstance(template, str) or not template.strip():
        raise _error(ctx, f"params.{name} must be a non-empty string, got {template!r}")
    return template


async def _ask(ctx: NodeContext, *, suffix: str = "",
               hints: Mapping[str, Any] | None = None) -> Completion:
    """Render the prompt, call the model, store the output if asked; shared by all three nodes."""
    settings = resolve(ctx.params)
    template = _prompt_template(ctx)
    mapped = mapped_inputs(ctx.params, ctx._read)
    source = ctx.input if mapped is None else mapped

    def render(text: str) -> str:
        return render_template(text, source, ctx._read, node_id=ctx.node_id)

    prompt = render(template) + suffix
    system = render(settings.system) if settings.system else None
    # what the fake needs to tell the data from the question: the filled-in values (by name),
    # and the template with its slots emptied
    fields = {v: render("{{" + v + "}}") for v in template_vars(template)}
    fake_hints = {"content": "\n".join(fields.values()), "fields": fields,
                  "instruction": _VAR.sub("", template) + suffix, **(hints or {})}
    return await agenerate(settings, build_messages(prompt, system), emit=ctx.emit,
                           fake_params=fake_hints)


def _store(ctx: NodeContext, value: Any) -> None:
    key = ctx.params.get("key") or ctx.params.get("outputKey")
    if key:
        ctx.state.set(str(key), value)


async def llm_process(ctx: NodeContext) -> str:
    """Fill ``params.prompt`` and return the model's reply text."""
    reply = (await _ask(ctx)).text
    _store(ctx, reply)
    return reply


def parse_bool(reply: str) -> bool | None:
    """``True`` for a reply starting with yes/true, ``False`` for no/false, else ``None``."""
    s = reply.strip().lower().lstrip(_EDGE_CHARS)
    if _TRUE.match(s):
        return True
    if _FALSE.match(s):
        return False
    return None


async def llm_condition(ctx: NodeContext) -> Result:
    """Ask a yes/no question; output ``True``/``False`` and take the ``"true"``/``"false"`` edge."""
    reply = (await _ask(ctx, suffix=CONDITION_SUFFIX, hints={"task": "condition"})).text
    value = parse_bool(reply)
    if value is None:
        shown = reply if len(reply) <= 200 else reply[:199] + "…"
        raise _error(ctx, f"llm-condition expected a reply starting with yes/true or no/false, "
                          f"got {shown!r}")
    _store(ctx, value)
    return Result(value, "true" if value else "false")


def allowed_actions(ctx: NodeContext) -> tuple[list[str], dict[str, str]]:
    """The router's choices and their descriptions, from ``params.routes`` / ``params.choices``
    (a list, or a mapping ``{action: description}``) or ``params._actions`` (set by a runtime
    that knows the node's outgoing edges)."""
    raw: Any = None
    for name in ("routes", "choices", "_actions"):
        raw = ctx.params.get(name)
        if raw:
            break
    if not raw:
        raise _error(ctx, "llm-router needs params.routes: the actions its outgoing edges use, "
                          "e.g. {\"routes\": [\"approve\", \"ban\"]} or {\"routes\": {\"approve\": "
                          "\"the text is fine\", \"ban\": \"insults\"}}")
    if isinstance(raw, str):
        raw = [r.strip() for r in raw.split(",")]
    if isinstance(raw, Mapping):
        descriptions = {str(k): str(v) for k, v in raw.items() if v}
        actions = [str(k) for k in raw]
    elif isinstance(raw, Sequence):
        descriptions = {}
        actions = [str(a) for a in raw]
    else:
        raise _error(ctx, f"params.routes must be a list or a mapping, got {type(raw).__name__}")
    actions = [a for a in dict.fromkeys(a.strip() for a in actions) if a]
    if not actions:
        raise _error(ctx, "params.routes is empty")
    return actions, descriptions


def normalise_choice(text: str) -> str:
    """How replies and actions are compared: first line, lower case, no quotes, punctuation or
    markdown around it, runs of spaces/underscores as one hyphen."""
    s = text.strip()
    s = s.splitlines()[0] if s else ""
    s = s.strip().lower().strip(_EDGE_CHARS)
    return re.sub(r"[\s_]+", "-", s)


def match_choice(reply: str, actions: Sequence[str]) -> str | None:
    """The action ``reply`` names, or ``None``. Accepts a ``label: choice`` prefix too."""
    table = {normalise_choice(a): a for a in actions}
    norm = normalise_choice(reply)
    if norm in table:
        return table[norm]
    head, sep, tail = reply.strip().partition(":")
    if sep and len(head.split()) <= 3:
        return table.get(normalise_choice(tail))
    return None


def router_suffix(actions: Sequence[str], descriptions: Mapping[str, str]) -> str:
    lines = ["", ""]
    if descriptions:
        lines.append("Choices:")
        lines.extend(f"- {a}: {descriptions[a]}" if a in descriptions else f"- {a}" for a in actions)
    lines.append(f"Answer with exactly one of: {', '.join(actions)}. Reply with that choice only.")
    return "\n".join(lines)


async def llm_router(ctx: NodeContext) -> Result:
    """Let the model pick one of the node's actions; output = the reply, action = the choice."""
    actions, descriptions = allowed_actions(ctx)
    comp = await _ask(ctx, suffix=router_suffix(actions, descriptions),
                hints={"task": "router", "choices": actions})
    reply = comp.text.strip()
    action = match_choice(reply, actions)
    if action is None:
        shown = reply if len(reply) <= 200 else reply[:199] + "…"
        raise _error(ctx, f"router returned {shown!r}; expected one of {actions}")
    _store(ctx, reply)
    return Result(reply, action)
