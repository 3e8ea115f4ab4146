"""The approval form as a person uses it (issue 20, defect 3): an "edit" choice comes with a text
box prefilled with the draft and sends that text (it used to send nothing); a ``schema`` answer
gets a field per property by type, with errors shown under the field as it is typed."""

from __future__ import annotations

from typing import Any

import pytest

import flownb

pytest.importorskip("ipywidgets")

from flownb.notebook.approval import approval_form  # noqa: E402

DRAFT = "Dear customer, sorry about the parcel."


def review_bp() -> flownb.Blueprint:
    return flownb.load({"id": "review-edit", "nodes": [
        {"id": "draft", "uses": "output", "params": {"template": DRAFT, "key": "reply"}},
        {"id": "review", "uses": "approval", "params": {"prompt": "Send?\n\n{{input}}"}},
        {"id": "use_edit", "uses": "output", "params": {"template": "{{review.text}}", "key": "reply"}},
        {"id": "send", "uses": "output", "params": {"template": "SENT: {{reply}}"}},
        {"id": "escalate", "uses": "output", "params": {"template": "ESCALATED"}}],
        "edges": [{"source": "draft", "target": "review"},
                  {"source": "review", "target": "send", "action": "approve"},
                  {"source": "review", "target": "use_edit", "action": "edit"},
                  {"source": "use_edit", "target": "send"},
                  {"source": "review", "target": "escalate", "action": "reject"}]})


def test_edit_choice_has_a_textbox_prefilled_with_the_draft_and_sends_its_text() -> None:
    res = flownb.run(review_bp())
    form = approval_form(res)
    assert [b.description for b in form.buttons] == ["approve", "edit", "reject"]
    box = form.edits["edit"]
    assert box.value == DRAFT and "flownb-approval-edit" in box._dom_classes
    box.value = ""
    form.buttons[1].click()
    assert form.result is None and "type the text" in form.status.value  # nothing empty sent
    box.value = "We are sorry: a replacement ships today."
    form.buttons[1].click()
    done: Any = form.result
    assert done.status == "succeeded"
    assert done.outputs["review"] == {"action": "edit", "text": "We are sorry: a replacement ships today."}
    assert done.outputs["send"] == "SENT: We are sorry: a replacement ships today."
    assert box.disabled and all(b.disabled for b in form.buttons)


def test_approve_still_sends_the_plain_choice() -> None:
    form = approval_form(flownb.run(review_bp()))
    form.buttons[0].click()
    assert form.result.outputs["send"] == f"SENT: {DRAFT}"


SCHEMA = {"type": "object", "required": ["score"], "properties": {
    "score": {"type": "integer", "minimum": 0, "maximum": 10, "description": "0-10"},
    "ship": {"type": "boolean"},
    "tone": {"enum": ["formal", "friendly"]},
    "note": {"type": "string", "maxLength": 20}}}


def test_schema_answer_gets_fields_by_type_and_inline_validation() -> None:
    import ipywidgets as w

    res = flownb.run(flownb.load({"id": "rate", "nodes": [
        {"id": "ask", "uses": "wait", "params": {"prompt": "Rate it", "schema": SCHEMA}}]}))
    form = approval_form(res)
    assert form.fields is not None
    by = {f.name: f for f in form.fields.fields}
    assert isinstance(by["ship"].input, w.Checkbox) and isinstance(by["tone"].input, w.Dropdown)
    assert isinstance(by["score"].input, w.Text) and by["score"].required
    form.send.click()  # score is required
    assert form.result is None and "score is required" in by["score"].error.value
    by["score"].input.value = "abc"  # shown as typed, before any send
    assert "whole number" in by["score"].error.value
    by["score"].input.value = "11"
    assert "score must be &lt;= 10" in by["score"].error.value
    by["note"].input.value = "x" * 30
    assert "at most 20 characters" in by["note"].error.value
    form.send.click()
    assert form.result is None
    by["score"].input.value = "7"
    assert by["score"].error.value == ""
    by["note"].input.value = "fine"
    by["ship"].input.value = True
    by["tone"].input.value = "friendly"
    form.send.click()
    assert form.result is not None, form.status.value
    assert form.result.status == "succeeded"
    assert form.result.outputs["ask"] == {"score": 7, "ship": True, "tone": "friendly", "note": "fine"}


def test_prompt_markdown_is_rendered_and_status_is_readable_in_both_themes() -> None:
    from flownb.notebook.approval import prompt_html

    html = prompt_html("Send this reply?\n\n\n\n# Friendly\nHello **there**")
    assert "#" not in html and "<b>Friendly</b>" in html and "<b>there</b>" in html
    assert html.count("<p") == 2  # one gap between paragraphs, not three blank lines
    form = approval_form(flownb.run(review_bp()))
    form.buttons[0].click()
    # the message in the theme's text colour (a green text fails 4.5:1 in light or dark)
    assert "color:var(--jp-ui-font-color1" in form.status.value and "✓" in form.status.value


def test_stream_has_a_useful_repr() -> None:
    s = flownb.stream(review_bp(), mode=["updates"])
    assert repr(s).startswith("<flownb stream of 'review-edit', modes ['updates'], not finished")
    list(s)
    assert "ended: waiting" in repr(s)
