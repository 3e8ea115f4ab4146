"""Flowcraft's four declarative agents, as Flowcraft-style JSON files, run unchanged.

The files under ``flownb/examples/flowcraft/`` (shipped as package data: ``flownb.examples.flowcraft_dir()``) follow the structure of Flowcraft's published examples
(numbered folders, one blueprint per file named by its id, ``promptTemplate`` + ``inputs``
mappings with candidate lists, ``output`` nodes with ``outputKey``, subflows by ``blueprintId``,
an ``any`` join, compiler ``_sourceLocation`` metadata) with prompts of our own. Every branch runs
in process (offline fake, whose record gives the prompts) and on real worker processes (the real
``openai`` client against the tests' chat-completions server, which records the prompts). Each
rendered prompt is checked against an independent rendering of the node's ``inputs`` mapping.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import Workers
from llm_server import LLMServer

import flownb
from flownb.examples import flowcraft_dir
from flownb import llm
from flownb.core.blueprint import Blueprint
from flownb.distributed.client import DistributedExecutor
from flownb.llm.fake import FakeLLM
from flownb.core.registry import Registry

DIR = flowcraft_dir()
LLM_TYPES = ("llm-process", "llm-condition", "llm-router")

#: case -> (blueprint id, inputs, nodes that must run, branch nodes that must not, text in output,
#:          the decisive replies a real model gives for this case: prompt substring -> reply)
CASES: dict[str, tuple[str, dict[str, Any], set[str], set[str], str, dict[str, str]]] = {
    "blog": ("100", {"topic": "Durable workflow engines for AI agents"},
             {"generate_outline", "draft_post", "suggest_titles", "final_output"}, set(),
             "== TITLES ==", {}),
    "job-invite": ("200", {"applicantName": "Jane Doe",
                           "resume": "Backend developer: six years of TypeScript, Node.js and "
                                     "SQL, some React.",
                           "coverLetter": "Dear hiring team, I am writing to express my interest "
                                          "in the position. Sincerely, Jane"},
                   {"check_qualifications", "send_interview_email", "final_output"},
                   {"send_rejection_email"}, "Email sent to Jane Doe", {"required skills": "true"}),
    "job-reject": ("200", {"applicantName": "Sam Roe",
                           "resume": "Graphic designer working in Photoshop, Illustrator, Figma.",
                           "coverLetter": "hey, gimme the job lol, i'm kinda great at stuff"},
                   {"check_qualifications", "send_rejection_email", "final_output"},
                   {"send_interview_email"}, "Email sent to Sam Roe", {"required skills": "false"}),
    "review-positive": ("300", {"initial_review": "I love the new dashboard, it is fast and "
                                                  "beautiful. Great work!"},
                        {"positive_branch", "final_step"},
                        {"negative_branch", "send_to_ticketing_system", "send_email_to_customer"},
                        "Thanks: ", {"customer positive": "true"}),
    "review-negative": ("300", {"initial_review": "The export-to-PDF feature is really slow and "
                                                  "sometimes crashes the app on large datasets."},
                        {"negative_branch", "send_to_ticketing_system", "send_email_to_customer",
                         "final_step"}, {"positive_branch"}, "Ticket: ",
                        {"customer positive": "false"}),
    "moderation-approve": ("400", {"userId": "user-1", "userPost": "What a lovely photo of the "
                                                                   "mountains, thanks for sharing!"},
                           {"triage_post", "approve_post_branch", "final_log"},
                           {"ban_user_branch", "redact_post_branch", "delete_spam_branch"},
                           "== MODERATION DONE ==", {"Pick the moderation": "action_approve"}),
    "moderation-redact": ("400", {"userId": "user-2", "userPost": "Help with my account please: "
                                  "my email is test@example.com and my phone is 555-123-4567."},
                          {"triage_post", "redact_post_branch", "final_log"},
                          {"ban_user_branch", "approve_post_branch", "delete_spam_branch"},
                          "Post redacted.", {"Pick the moderation": "action_redact"}),
    "moderation-spam": ("400", {"userId": "user-3", "userPost": "BUY NOW!!! Cheap pills, click "
                                                                "here: http://cheap-pills.example.biz"},
                        {"triage_post", "delete_spam_branch", "final_log"},
                        {"ban_user_branch", "approve_post_branch", "redact_post_branch"},
                        "== MODERATION DONE ==", {"Pick the moderation": "action_delete_spam"}),
    "moderation-ban": ("400", {"userId": "user-4", "userPost": "You are an idiot and a worthless "
                                                               "moron, get lost."},
                       {"triage_post", "ban_user_branch", "final_log"},
                       {"approve_post_branch", "redact_post_branch", "delete_spam_branch"},
                       "User banned.", {"Pick the moderation": "action_ban",
                                        "Rate the hate speech": "severe"}),
}


@pytest.fixture(autouse=True)
def _llm_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM", "FLOWNB_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLOWNB_LLM_CACHE", "0")
    llm.reset()
    yield
    llm.reset()


@pytest.fixture
def registry() -> Registry:
    reg = Registry()
    flownb.load_dir(DIR, registry=reg)
    return reg


# -- an independent rendering of Flowcraft's inputs rule ------------------------------------------

def _first(sources: str | list[str], outputs: Mapping[str, Any], state: Mapping[str, Any]) -> Any:
    for src in [sources] if isinstance(sources, str) else sources:
        for table in (outputs, state):  # Flowcraft: `_outputs.<src>` first, then `<src>`
            if table.get(src) is not None:
                return table[src]
    return ""


def _render(template: str, values: Mapping[str, Any]) -> str:
    def one(m: re.Match[str]) -> str:
        v = values[m.group(1)]
        return v if isinstance(v, str) else json.dumps(v)
    return re.sub(r"\{\{\s*([\w.-]+)\s*\}\}", one, template)


def expected_prompts(bp: Blueprint, res: flownb.RunResult, reg: Registry) -> list[str]:
    """The prompt every LLM node that ran must have sent, in this run and its subflows."""
    out: list[str] = []

    def walk(b: Blueprint, outputs: Mapping[str, Any], state: Mapping[str, Any],
             ran: set[str] | None) -> None:
        for n in b.nodes:
            if ran is not None and n.id not in ran:
                continue
            mapping = n.params.get("inputs") or {}
            if n.uses in LLM_TYPES:
                values = {k: _first(v, outputs, state) for k, v in mapping.items()}
                out.append(_render(n.params["promptTemplate"], values))
            elif n.uses == "subflow":  # the child starts with its inputs as its state
                child = reg.get_blueprint(str(n.params["blueprintId"]))
                walk(child, {}, {k: _first(v, outputs, state) for k, v in mapping.items()}, None)

    ran = {n for n, s in res.nodes.items() if s.status == "succeeded"}
    walk(bp, res.outputs, res.state, ran)
    return out


def check(case: str, res: flownb.RunResult, prompts: list[str], reg: Registry) -> None:
    bid, _, must, must_not, text, _ = CASES[case]
    assert res.status == "succeeded", res.error
    ran = {n for n, s in res.nodes.items() if s.status == "succeeded"}
    assert must <= ran, f"missing: {must - ran}"
    assert not (must_not & ran), f"branches not chosen must not run: {must_not & ran}"
    assert isinstance(res.output, str) and text in res.output, res.output
    assert res.state.get("final_output") == res.output  # the output node's default outputKey
    expected = expected_prompts(reg.get_blueprint(bid), res, reg)
    assert expected
    for want in expected:
        assert "{{" not in want
        assert any(p.startswith(want) for p in prompts), f"no prompt rendered as {want!r}"


# -- loading --------------------------------------------------------------------------------------

def test_folder_is_one_library(registry: Registry) -> None:
    lib = flownb.load_dir(DIR, registry=Registry())
    assert sorted(lib) == ["100", "200", "201", "202", "300", "301", "302", "400", "401", "402",
                           "403", "500", "501"]  # the shipped files; tests/flowcraft holds 600/601
    bp = lib["100"]
    assert bp.nodes[0].meta == {"_sourceLocation": {"file": "blog-post.ts", "line": 4,
                                                     "column": 2}}
    assert bp.edges[0].meta["_sourceLocation"]["line"] == 9
    assert lib["200"].node("send_interview_email").params["blueprintId"] == "201"  # was 201
    for bid in lib:
        problems = lib[bid].lint(registry)
        assert problems == [], (bid, [str(p) for p in problems])


def test_duplicate_ids_in_a_folder_are_refused(tmp_path: Path) -> None:
    doc = json.dumps({"id": "same", "nodes": [{"id": "a", "uses": "noop"}]})
    (tmp_path / "a.json").write_text(doc)
    (tmp_path / "b.json").write_text(doc)
    (tmp_path / "inputs.json").write_text('{"text": "not a blueprint"}')
    with pytest.raises(flownb.BlueprintError, match="defined twice"):
        flownb.load_dir(tmp_path, registry=Registry())
    (tmp_path / "b.json").unlink()
    lib = flownb.load_dir(tmp_path, registry=Registry())
    assert list(lib) == ["same"] and lib.skipped == [str(tmp_path / "inputs.json")]


# -- in process, offline fake -----------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(CASES))
def test_agent_in_process(case: str, registry: Registry) -> None:
    fake = FakeLLM()
    llm.configure(fake=fake)
    bid, inputs, *_ = CASES[case]
    res = flownb.run(registry.get_blueprint(bid), inputs, registry=registry)
    prompts = [m[-1]["content"] for m, _ in fake.calls]
    check(case, res, prompts, registry)


def test_order_routing_conditions_and_transform(registry: Registry) -> None:
    bp = registry.get_blueprint("500")
    small = flownb.run(bp, {"total": 120, "items": ["a", "b", "c"]}, registry=registry)
    assert small.output == "small order of 3 item(s)"  # transform input.items.length
    assert small.outputs["item-count"] == 3
    large = flownb.run(bp, {"total": 900, "items": ["a"]}, registry=registry)
    assert large.output == "large order of 900 needs a manager"
    assert "small-order" not in large.outputs


# -- real workers, real openai client, the tests' chat-completions server ------------------------------

def oracle(decisions: Mapping[str, str]) -> Any:
    """A model for the server: the case's decisive answers; 'false' to other yes/no questions."""
    def reply(body: dict[str, Any]) -> str:
        prompt = body["messages"][-1]["content"]
        for needle, answer in decisions.items():
            if needle in prompt:
                return answer
        if "true or false" in prompt:
            return "false"
        return f"text for: {prompt.splitlines()[0][:60]}"
    return reply


@pytest.fixture(scope="module")
def served(module_redis_url: str) -> Iterator[tuple[LLMServer, str]]:
    server = LLMServer().start()
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_BASE_URL", server.base_url)
    mp.setenv("OPENAI_API_KEY", "sk-test")
    mp.setenv("FLOWNB_LLM", "openai")
    mp.setenv("FLOWNB_LLM_CACHE", "0")
    w = Workers(module_redis_url)
    try:
        w.start(2)  # the workers inherit the environment: they talk to the server
        yield server, module_redis_url
    finally:
        w.close()
        mp.undo()
        server.stop()


@pytest.mark.timeout(180)
@pytest.mark.parametrize("case", sorted(CASES))
def test_agent_on_workers(case: str, served: tuple[LLMServer, str], registry: Registry) -> None:
    server, url = served
    bid, inputs, *_, decisions = CASES[case]
    server.requests.clear()
    server.script(reply=oracle(decisions))
    ex = DistributedExecutor(url, registry=registry)
    res = ex.submit(registry.get_blueprint(bid), inputs).result(timeout=120)
    prompts = [r.json["messages"][-1]["content"] for r in server.requests]
    check(case, res, prompts, registry)


@pytest.mark.timeout(120)
def test_cli_runs_a_file_with_its_folder_and_an_example_name(tmp_path: Path) -> None:
    env_py = [sys.executable, "-m", "flownb"]
    env = {"PATH": "/usr/bin:/bin", "FLOWNB_LLM": "fake", "FLOWNB_LLM_CACHE": "0",
           "HOME": str(tmp_path)}
    inputs = json.dumps(CASES["job-reject"][1])
    p = subprocess.run([*env_py, "run", str(DIR / "2.job-application" / "200.json"), "--inputs",
                        inputs], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    out = json.loads(p.stdout)
    assert out["status"] == "succeeded" and "Email sent to Sam Roe" in out["output"]
    p = subprocess.run([*env_py, "run", "content_moderation"], capture_output=True, text=True,
                       env=env, cwd=tmp_path, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["status"] == "succeeded"
    p = subprocess.run([*env_py, "validate", str(DIR)], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=60, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count(": ok (") == 13
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "main.json").write_text(json.dumps(
        {"nodes": [{"id": "s", "uses": "subflow", "params": {"blueprintId": 999}}]}))
    p = subprocess.run([*env_py, "validate", str(tmp_path / "lib")], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=60, check=False)
    assert p.returncode == 1 and "subflow blueprint '999' is not in" in p.stdout


@pytest.mark.timeout(120)
def test_order_routing_on_workers(served: tuple[LLMServer, str], registry: Registry) -> None:
    _, url = served
    ex = DistributedExecutor(url, registry=registry)
    bp = registry.get_blueprint("500")
    small = ex.submit(bp, {"total": 120, "items": ["a", "b", "c"]}).result(timeout=60)
    assert small.status == "succeeded", small.error
    assert small.output == "small order of 3 item(s)" and small.outputs["item-count"] == 3
    large = ex.submit(bp, {"total": 900, "items": ["a"]}).result(timeout=60)
    assert large.output == "large order of 900 needs a manager"


# -- lint: what a typo silently breaks ------------------------------------------------------------

def _codes(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p.code, p.message) for p in Blueprint.from_dict(doc).lint()
            if p.code in ("unknown-param", "unknown-condition-name", "unmapped-template-var")]


def test_lint_unknown_param_with_did_you_mean() -> None:
    found = _codes({"id": "x", "nodes": [
        {"id": "a", "uses": "llm-process", "params": {"promptTemplat": "hi {{t}}",
                                                      "inputs": {"t": "t"}}}]})
    assert len(found) == 1 and found[0][0] == "unknown-param"
    assert "did you mean 'promptTemplate'" in found[0][1]


def test_lint_unknown_condition_name() -> None:
    doc: dict[str, Any] = {"id": "x", "metadata": {"state": ["score"]}, "nodes": [
        {"id": "route-by-total", "uses": "passthrough"}, {"id": "b", "uses": "noop"}],
        "edges": [{"source": "route-by-total", "target": "b",
                   "condition": "route-by-totl.total < 500 and score > 1"}]}
    found = _codes(doc)
    assert [c for c, _ in found] == ["unknown-condition-name"]
    assert "'route-by-totl'" in found[0][1] and "did you mean 'route-by-total'" in found[0][1]
    doc["edges"][0]["condition"] = "route-by-total.total < 500 and score > 1 and result.output"
    assert _codes(doc) == []


def test_lint_template_variable_nothing_provides() -> None:
    found = _codes({"id": "x", "nodes": [
        {"id": "a", "uses": "output", "params": {"promptTemplate": "{{titles}} {{draf}}",
                                                 "inputs": {"titles": "t", "draft": "d"}}}]})
    assert [c for c, _ in found] == ["unmapped-template-var"]
    assert "{{draf}}" in found[0][1] and "did you mean 'draft'" in found[0][1]


def test_bad_transform_is_a_lint_error() -> None:
    bp = Blueprint.from_dict({"id": "x", "nodes": [{"id": "a", "uses": "noop"},
                                                   {"id": "b", "uses": "noop"}],
                              "edges": [{"source": "a", "target": "b", "transform": "input.x +"}]})
    errors = [p for p in bp.lint() if p.severity == "error"]
    assert [p.code for p in errors] == ["bad-transform"]
    assert errors[0].location == "edges[0].transform"


def test_metadata_round_trip_and_numeric_ids() -> None:
    doc = {"id": 7, "_compiledAt": "2025-01-01", "nodes": [
        {"id": "a", "uses": "subflow", "params": {"blueprintId": 8}, "_sourceLocation": {"l": 1}}],
        "edges": []}
    bp = Blueprint.from_dict(doc)
    assert bp.id == "7" and bp.metadata == {"_compiledAt": "2025-01-01"}
    assert bp.nodes[0].params["blueprintId"] == "8" and bp.nodes[0].meta == {"_sourceLocation": {"l": 1}}
    assert Blueprint.from_json(bp.to_json()) == bp


# -- node-level inputs and the fake's reading of Flowcraft-style prompts ----------------------------

def test_node_level_inputs_take_candidate_lists() -> None:
    bp = Blueprint.from_dict({"id": "x", "nodes": [
        {"id": "pick", "uses": "llm-router", "params": {"routes": ["left", "right"],
                                                        "prompt": "left or right? {{x}}"}},
        {"id": "left", "uses": "output", "params": {"template": "L"}},
        {"id": "right", "uses": "output", "params": {"template": "R"}},
        {"id": "join", "uses": "passthrough", "inputs": {"chosen": ["left", "right"],
                                                         "x": "x"}}],
        "edges": [{"source": "pick", "target": "left", "action": "left"},
                  {"source": "pick", "target": "right", "action": "right"},
                  {"source": "left", "target": "join"}, {"source": "right", "target": "join"}]})
    fake = FakeLLM(lambda messages, params: "right")
    llm.configure(fake=fake)
    res = flownb.run(bp, {"x": 1})
    assert res.output == {"chosen": "R", "x": 1}


@pytest.mark.parametrize("text,pii", [("mail me at jo@example.org", True),
                                      ("call 555-123-4567 today", True),
                                      ("nice weather", False)])
def test_fake_pii_whatever_the_framing(text: str, pii: bool) -> None:
    bp = Blueprint.from_dict({"id": "x", "nodes": [
        {"id": "check_for_pii", "uses": "llm-condition",
         "params": {"promptTemplate": "[check_for_pii] Does this contain PII? {{text}}",
                    "inputs": {"text": "text"}}}]})
    assert flownb.run(bp, {"text": text}).output is pii


def test_fake_router_defaults_to_an_approve_route() -> None:
    bp = Blueprint.from_dict({"id": "x", "nodes": [
        {"id": "triage", "uses": "llm-router",
         "params": {"promptTemplate": "Decide: {{post}}", "inputs": {"post": "post"}}},
        {"id": "a", "uses": "noop"}, {"id": "b", "uses": "noop"}, {"id": "c", "uses": "noop"}],
        "edges": [{"source": "triage", "target": "a", "action": "action_ban"},
                  {"source": "triage", "target": "b", "action": "action_escalate"},
                  {"source": "triage", "target": "c", "action": "action_approve"}]})
    res = flownb.run(bp, {"post": "A calm note about the garden."})
    assert res.nodes["triage"].status == "succeeded" and "c" in res.outputs
