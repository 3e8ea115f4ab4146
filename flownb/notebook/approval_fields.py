"""Input fields for an answer that needs a value: one field per property of a ``schema`` (by type),
and the text box of an "edit"-like choice — with the errors shown under the field, as the person
types, instead of after a refused answer.

Why fields and not one JSON box: a person answering a review should not have to write JSON (the
first form had only a JSON box, and an "edit" button that sent no text at all). The checks are
flownb's own (:func:`flownb.core.answers.validate`), so the form refuses exactly what
``resume()`` would.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from ..core.answers import AnswerError, validate

#: choices that take a text with them (``{"action": <choice>, "text": ...}``) unless the form is
#: told otherwise (``approval_form(..., edit=[...])``)
EDIT_CHOICES = ("edit", "revise", "rewrite", "change", "correct", "modify")


def draft_text(value: Any) -> str:
    """What an edit box starts with: the text the person is asked about (the waiting node's
    input), or the first text field of a mapping, else its JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        for key in ("text", "reply", "draft", "content", "output"):
            if isinstance(value.get(key), str):
                return str(value[key])
    if value is None:
        return ""
    try:
        return json.dumps(value, indent=2, ensure_ascii=False)
    except (TypeError, ValueError):
        return str(value)


def error_html(message: str) -> str:
    return (f"<span class='flownb-field-error' style='color:var(--jp-error-color1,#d32f2f)'>✗ "
            f"{html.escape(message)}</span>") if message else ""


class _Field:
    """One input of a schema form: a widget, how to read it, and its error line."""

    def __init__(self, name: str, schema: Mapping[str, Any], required: bool) -> None:
        import ipywidgets as w  # type: ignore[import-untyped]

        self.name, self.schema, self.required = name, schema, required
        t = schema.get("type")
        self.kind = t if isinstance(t, str) else "json"
        label = str(schema.get("title") or name) + (" *" if required else "")
        desc = str(schema.get("description") or "")
        default = schema.get("default")
        layout = w.Layout(width="100%")
        if "enum" in schema:
            self.kind = "enum"
            options = [(json.dumps(v) if not isinstance(v, str) else v, v) for v in schema["enum"]]
            self.input = w.Dropdown(options=options, value=default if default in schema["enum"]
                                    else schema["enum"][0], layout=layout)
        elif self.kind == "boolean":
            self.input = w.Checkbox(value=bool(default), indent=False)
        elif self.kind in ("integer", "number", "string"):
            text = "" if default is None else str(default)
            self.input = w.Text(value=text, placeholder=self.kind, layout=layout)
        else:
            self.kind = "json"
            self.input = w.Textarea(value="" if default is None else json.dumps(default),
                                    placeholder="JSON", layout=w.Layout(width="100%", height="4em"))
        self.input.add_class("flownb-field")
        self.input.add_class(f"flownb-field-{name}")
        self.label = w.HTML(f"<b>{html.escape(label)}</b>" + (
            f" <span style='opacity:.75'>{html.escape(desc)}</span>" if desc else ""))
        self.error = w.HTML("")
        self.box = w.VBox([self.label, self.input, self.error])
        self.input.observe(lambda _: self.check(), names="value")

    def empty(self) -> bool:
        return self.kind not in ("boolean", "enum") and str(self.input.value).strip() == ""

    def read(self) -> Any:
        """The field's value as JSON data; :class:`AnswerError` when it cannot be read."""
        v = self.input.value
        if self.kind == "integer":
            try:
                return int(str(v).strip())
            except ValueError:
                raise AnswerError(f"{self.name} must be a whole number, got {v!r:.40}") from None
        if self.kind == "number":
            try:
                return float(str(v).strip())
            except ValueError:
                raise AnswerError(f"{self.name} must be a number, got {v!r:.40}") from None
        if self.kind == "json":
            try:
                return json.loads(v)
            except ValueError as exc:
                raise AnswerError(f"{self.name}: not JSON ({exc})") from None
        return v

    def check(self) -> bool:
        """Show this field's error (or clear it); whether it is acceptable."""
        msg = ""
        if self.empty():
            msg = f"{self.name} is required" if self.required else ""
        else:
            try:
                validate(self.read(), self.schema, self.name)
            except AnswerError as exc:
                msg = exc.message
        self.error.value = error_html(msg)
        return not msg


class SchemaFields:
    """A field per property of an object ``schema`` (or one field for any other schema)."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        import ipywidgets as w

        self.schema = schema
        props = schema.get("properties") if schema.get("type") == "object" else None
        self.object = isinstance(props, Mapping) and bool(props)
        required = set(schema.get("required") or [])
        if self.object:
            assert isinstance(props, Mapping)
            self.fields = [_Field(str(k), v if isinstance(v, Mapping) else {}, k in required)
                           for k, v in props.items()]
        else:
            self.fields = [_Field("answer", schema, True)]
        self.widget = w.VBox([f.box for f in self.fields])
        self.widget.add_class("flownb-approval-fields")

    def value(self) -> Any:
        """The answer the fields make, checked against the schema; :class:`AnswerError` (also
        shown under the fields) when it does not pass."""
        ok = all([f.check() for f in self.fields])  # every field shows its error, not the first
        if not ok:
            raise AnswerError("fix the fields marked in red")
        if not self.object:
            value = self.fields[0].read()
        else:
            value = {f.name: f.read() for f in self.fields if not f.empty()}
        validate(value, self.schema)
        return value
