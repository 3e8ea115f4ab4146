"""``{{ name }}`` templates, filled from a node's input, the run's state and node outputs.

Used by the ``output`` node and the LLM nodes. Deliberately not Jinja: no expressions, no code,
only dotted lookups — templates come from blueprint data and must stay data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from .context import lookup_key
from .errors import FlownbError

_VAR = re.compile(r"\{\{\s*([A-Za-z_][\w.\-]*)\s*\}\}")


def template_vars(template: str) -> list[str]:
    return _VAR.findall(template)


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
