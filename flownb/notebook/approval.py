"""An approval form for a run that waits for a person: one button per choice, a box for a JSON
answer, and a status line.

It calls the same API a script would — ``target.waiting()`` to learn what is asked and
``target.resume(node, value)`` to answer — so it works for an in-process ``RunResult`` and a
distributed ``RunHandle`` alike, and a refused answer (not a choice, breaks the schema, answered
already from another process) is shown in the form instead of raising in the kernel.
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..core.errors import FlownbError


class ApprovalForm:
    """``flownb.notebook.approval_form(result_or_handle)``; ``.result`` holds what the last
    answer returned (the new ``RunResult`` in process, the handle on Redis)."""

    def __init__(self, target: Any, node: str | None = None) -> None:
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
        prompt = html.escape(self.info.get("prompt") or "(no prompt)").replace("\n", "<br>")
        self.prompt = w.HTML(f"<b>{html.escape(self.node)}</b> asks:<br>{prompt}")
        self.buttons = [w.Button(description=str(c), button_style="primary" if i == 0 else "")
                        for i, c in enumerate(self.info.get("choices") or [])]
        for b in self.buttons:
            b.on_click(lambda btn: self.answer(btn.description))
        hint = json.dumps(self.info["schema"]) if self.info.get("schema") else \
            '{"action": "approve", "note": "…"}'
        self.text = w.Textarea(placeholder=f"JSON answer, e.g. {hint}",
                               layout=w.Layout(width="100%", height="5em"))
        self.send = w.Button(description="Send JSON")
        self.send.on_click(lambda _: self.answer_json(self.text.value))
        self.status = w.HTML("")
        self.widget = w.VBox([self.prompt, w.HBox(self.buttons), self.text, self.send, self.status])

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
        for b in [*self.buttons, self.send]:
            b.disabled = True
        status = out.status() if callable(getattr(out, "status", None)) else out.status
        self._show(f"answered {json.dumps(value)[:80]}; run status: {status}", ok=True)
        return out

    def _show(self, message: str, *, ok: bool) -> None:
        color = "#1a7f37" if ok else "#b00020"
        self.status.value = f"<span style='color:{color}'>{html.escape(message)}</span>"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def approval_form(target: Any, node: str | None = None) -> ApprovalForm:
    """A form answering ``target``'s waiting node (the first one, or ``node``)."""
    return ApprovalForm(target, node)
