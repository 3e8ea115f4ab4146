"""An approval form for a run that waits for a person: one button per choice (a text box, prefilled
with the draft, for a choice that takes a text such as "edit"), fields by type for a ``schema``
answer, a box for a JSON answer, and a status line.

It calls the same API a script would — ``target.waiting()`` to learn what is asked and
``target.resume(node, value)`` to answer — so it works for an in-process ``RunResult`` and a
distributed ``RunHandle`` alike, and a refused answer (not a choice, breaks the schema, answered
already from another process) is shown in the form instead of raising in the kernel.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Sequence
from typing import Any

from ..core.answers import AnswerError
from ..core.errors import FlownbError
from .approval_fields import EDIT_CHOICES, SchemaFields, draft_text
from .text_colours import STYLE, css


def prompt_html(text: str) -> str:
    """A prompt as a person reads it: the little markdown prompts use (``# heading``,
    ``**bold**``, paragraphs) rendered, not shown raw; one gap between paragraphs, not many
    (an LLM draft in a prompt is often markdown)."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = [ln.rstrip() for ln in para.splitlines() if ln.strip()]
        if not lines:
            continue
        parts = []
        for ln in lines:
            esc = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(ln))
            m = re.match(r"#{1,6}\s+(.*)", esc)
            parts.append(f"<b>{m.group(1)}</b>" if m else esc)
        out.append("<p style='margin:0.35em 0'>" + "<br>".join(parts) + "</p>")
    return "".join(out)


class ApprovalForm:
    """``flownb.notebook.approval_form(result_or_handle)``; ``.result`` holds what the last
    answer returned (the new ``RunResult`` in process, the handle on Redis)."""

    def __init__(self, target: Any, node: str | None = None, *,
                 edit: Sequence[str] = EDIT_CHOICES) -> None:
        try:
            import ipywidgets as w  # type: ignore[import-untyped]
        except ImportError:
            raise FlownbError("the approval form needs ipywidgets: pip install 'flownb[notebook]' "
                              "(or answer with result.resume(node, value))") from None
        self.target = target
        self.result: Any = None
        waits = [x for x in target.waiting() if node is None or x["node"] == node]
        if not waits:
            raise FlownbError(f"run {getattr(target, 'run_id', '?')} is not waiting"
                              + (f" at node {node!r}" if node else "") + " for an answer")
        self.info = waits[0]
        self.node = str(self.info["node"])
        prompt = prompt_html(self.info.get("prompt") or "(no prompt)")
        self.prompt = w.HTML(f"<div class='flownb-approval-prompt'><b>{html.escape(self.node)}"
                             f"</b> asks:{prompt}</div>")
        choices = [str(c) for c in self.info.get("choices") or []]
        self.buttons = [w.Button(description=c, button_style="primary" if i == 0 else "")
                        for i, c in enumerate(choices)]
        #: choice -> the text box whose text goes with it (``{"action": choice, "text": ...}``),
        #: prefilled with the draft being reviewed
        self.edits: dict[str, Any] = {}
        draft = draft_text(self.info.get("input"))
        rows: list[Any] = []
        for b in self.buttons:
            b.add_class("flownb-approval-choice")
            if b.description in edit:
                box = w.Textarea(value=draft, layout=w.Layout(width="100%", height="8em"))
                box.add_class("flownb-approval-edit")
                self.edits[b.description] = box
                rows += [w.HTML(f"<b>{html.escape(b.description)}</b>: change the text, then "
                                f"click <b>{html.escape(b.description)}</b> to send it"), box]
            b.on_click(lambda btn: self.choose(btn.description))
        #: the fields of a ``schema`` answer (by type, errors shown as the person types)
        self.fields = SchemaFields(self.info["schema"]) if self.info.get("schema") else None
        hint = json.dumps(self.info["schema"]) if self.info.get("schema") else \
            '{"action": "approve", "note": "…"}'
        self.text = w.Textarea(placeholder=f"JSON answer, e.g. {hint}",
                               layout=w.Layout(width="100%", height="5em"))
        self.send = w.Button(description="Send" if self.fields is not None else "Send JSON",
                             button_style="primary" if not choices else "")
        self.send.add_class("flownb-approval-send")
        if self.fields is not None:
            self.send.on_click(lambda _: self.answer_fields())
            body: list[Any] = [self.fields.widget, self.send]
        elif choices:  # buttons (and edit boxes) are the answer; JSON stays for the rest
            self.send.on_click(lambda _: self.answer_json(self.text.value))
            body = [*rows, w.HBox(self.buttons), w.HTML("or a JSON answer:"), self.text, self.send]
        else:
            self.send.on_click(lambda _: self.answer_json(self.text.value))
            body = [self.text, self.send]
        self.status = w.HTML("")
        self.status.add_class("flownb-approval-status")
        self.widget = w.VBox([self.prompt, *body, self.status])
        self.widget.add_class("flownb-approval")

    def choose(self, choice: str) -> Any:
        """A choice's button: the choice, or ``{"action": choice, "text": <its box>}`` for a
        choice that takes a text (an empty text is refused here, not sent)."""
        box = self.edits.get(choice)
        if box is None:
            return self.answer(choice)
        if not str(box.value).strip():
            return self._show(f"type the text to send with {choice!r} first", ok=False)
        return self.answer({"action": choice, "text": box.value})

    def answer_fields(self) -> Any:
        """The schema fields' answer (refused inline when a field is wrong)."""
        assert self.fields is not None
        try:
            value = self.fields.value()
        except AnswerError as exc:
            return self._show(exc.message, ok=False)
        return self.answer(value)

    def answer_json(self, text: str) -> Any:
        try:
            value = json.loads(text)
        except ValueError as exc:
            return self._show(f"not JSON: {exc}", ok=False)
        return self.answer(value)

    def answer(self, value: Any) -> Any:
        """Resume the waiting node with ``value`` (what a button or the JSON box sends)."""
        try:
            out = self.target.resume(self.node, value, visit=self.info.get("visit"))
        except FlownbError as exc:
            return self._show(exc.message, ok=False)
        self.result = out
        for b in [*self.buttons, self.send, *self.edits.values(), self.text]:
            b.disabled = True
        status = out.status() if callable(getattr(out, "status", None)) else out.status
        self._show(f"answered {json.dumps(value)[:80]}; run status: {status}", ok=True)
        return out

    def _show(self, message: str, *, ok: bool) -> None:
        # text in the theme's own colour (readable in light and dark: a green text on either
        # background falls under 4.5:1 in one of them), the outcome in a coloured mark; the
        # error colour --jp-error-color1 is >= 4.9:1 in both themes
        if ok:
            self.status.value = (
                f"{STYLE}<span style='color:{css('succeeded', 'var(--jp-success-color1,#388e3c)')};"
                "font-weight:700'>✓</span> "
                f"<span style='color:var(--jp-ui-font-color1,#212121)'>{html.escape(message)}</span>")
        else:
            self.status.value = (f"<span style='color:var(--jp-error-color1,#d32f2f)'>✗ "
                                 f"{html.escape(message)}</span>")

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def approval_form(target: Any, node: str | None = None, *,
                  edit: Sequence[str] = EDIT_CHOICES) -> ApprovalForm:
    """A form answering ``target``'s waiting node (the first one, or ``node``): a button per
    choice; a choice named in ``edit`` ("edit", "revise", … by default) also gets a text box
    prefilled with the draft, sent as ``{"action": choice, "text": ...}``; a ``schema`` answer
    gets a field per property, checked as it is typed."""
    return ApprovalForm(target, node, edit=edit)
