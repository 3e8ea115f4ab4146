"""``{{ name }}`` templates, filled from a node's input, the run's state and node outputs.

Used by the ``output`` node and the LLM nodes. Deliberately not Jinja: no expressions, no code,
only dotted lookups — templates come from blueprint data and must stay data.

Flowcraft's form is understood too: ``params.promptTemplate`` with ``params.inputs``, a mapping
``{templateVar: source}`` where a source is a node id (its output), a state key, or a list of
candidates of which the first with a value wins. A mapped variable that resolves to nothing
renders as an empty string, as in Flowcraft.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .context import lookup_key, lookup_source
from .errors import FlownbError

_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")


#: where a node's template may be, in order: flownb's names, then Flowcraft's
TEMPLATE_PARAMS = ("prompt", "template", "promptTemplate")


def template_vars(template: str) -> list[str]:
    return _VAR.findall(template)


def node_template(params: Mapping[str, Any], names: tuple[str, ...] = TEMPLATE_PARAMS) -> Any:
    """The first of ``names`` set in ``params`` (``None`` when none is)."""
    for name in names:
        if params.get(name) is not None:
            return params[name]
    return None


def mapped_inputs(params: Mapping[str, Any], read: Callable[[str], Any]) -> dict[str, Any] | None:
    """``params.inputs`` resolved (``{var: value}``), or ``None`` when the node has no mapping."""
    mapping = params.get("inputs")
    if not isinstance(mapping, Mapping):
        return None
    return {str(name): lookup_source(src if isinstance(src, list) else str(src), read)
            for name, src in mapping.items()}


def render_template(template: str, input_: Any, read: Callable[[str], Any], *,
                    strict: bool = True, node_id: str | None = None) -> str:
    """Replace each ``{{ path }}``: first from the input (when it is a mapping), then state/outputs."""

    def value(path: str) -> str:
        head, _, rest = path.partition(".")
        found: Any = _MISSING
        if path == "input":
            found = input_
        elif isinstance(input_, Mapping) and head in input_:
            found = input_[head]
            for part in rest.split(".") if rest else ():
                found = found.get(part) if isinstance(found, Mapping) else None
        else:
            found = lookup_key(path, read)
            if found is None and strict and not _exists(path, read):
                raise FlownbError(f"template variable {{{{{path}}}}} is not in the input, the state "
                                  "or a node output", node_id=node_id)
        if found is None or found is _MISSING:
            return ""
        if isinstance(found, str):
            return found
        return json.dumps(found, ensure_ascii=False, default=str)

    return _VAR.sub(lambda m: value(m.group(1)), template)


_MISSING = object()


def _exists(path: str, read: Callable[[str], Any]) -> bool:
    head = path.split(".")[0]
    for key in (path, "_outputs." + path, head, "_outputs." + head):
        try:
            read(key)
            return True
        except KeyError:
            continue
    return False
