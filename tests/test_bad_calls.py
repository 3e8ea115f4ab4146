"""Bad calls get flownb errors (issue 17.6): inputs that are not a mapping, on every entry point,
in one line saying what was passed and what to pass; and a named model with no key says, once,
that the offline fake answers instead (in code and on the CLI)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

import flownb
from flownb.llm import notice
from flownb.llm.notice import FakeModelWarning

BP = flownb.Blueprint.from_dict({"id": "one", "nodes": [{"id": "a", "uses": "passthrough"}]})

BAD: list[tuple[Any, str]] = [
    (["hello", "world"], "inputs is a list (['hello', 'world']), not a mapping of input names to "
                         "values; pass a dict such as {'text': ...}; for one run per item use "
                         "flownb.run_many(bp, items, key='text')"),
    ("hello", "inputs is a str ('hello'), not a mapping of input names to values; pass a dict "
              "such as {'text': 'hello'}"),
    ({1: "x"}, "inputs: input names must be strings, got 1"),
]


@pytest.mark.parametrize("value, expected", BAD)
def test_run_and_arun_refuse_inputs_that_are_not_a_mapping(value: Any, expected: str) -> None:
    with pytest.raises(flownb.FlownbError) as info:
        flownb.run(BP, value)
    assert str(info.value).startswith(expected) and "\n" not in str(info.value)
    with pytest.raises(flownb.FlownbError) as info:
        asyncio.run(flownb.arun(BP, value))
    assert str(info.value).startswith(expected)


@pytest.mark.timeout(60)
def test_submit_and_cluster_run_refuse_them_too(redis_url: str) -> None:
    from flownb.distributed.client import DistributedExecutor
    from flownb.notebook import LocalCluster

    ex = DistributedExecutor(redis_url)
    for value, expected in BAD:
        with pytest.raises(flownb.FlownbError) as info:
            ex.submit(BP, value)
        assert str(info.value).startswith(expected)
    assert ex.runs() == []  # nothing was stored
    with LocalCluster(1, mode="thread", redis=redis_url) as cluster:
        for call in (cluster.run, cluster.submit):
            with pytest.raises(flownb.FlownbError, match=r"^inputs is a list \(\['hello', 'world'\]\)"):
                call(BP, ["hello", "world"])
        assert cluster.run(BP, {"text": "ok"}).output == {"text": "ok"}


def test_batch_rows_say_the_same_with_their_own_fix() -> None:
    with pytest.raises(flownb.FlownbError) as info:
        flownb.run_many(BP, ["a", {"text": "b"}])
    assert str(info.value) == ("row 0 is a str ('a'), not a mapping of input names to values; pass "
                               "a dict such as {'text': 'a'}; or pass key='text' to use each row "
                               "as inputs['text']")
    with pytest.raises(flownb.FlownbError, match="row 1: input names must be strings, got 2"):
        flownb.run_many(BP, [{"a": 1}, {2: "b"}])
    assert [r.output for r in flownb.run_many(BP, ["a"], key="text").results()] == [{"text": "a"}]


# -- the fake answering for a named model -----------------------------------------------------------

LLM_BP = {"id": "real-model", "nodes": [{"id": "a", "uses": "llm-process",
                                         "params": {"model": "gpt-4o", "prompt": "Sum up: {{text}}"}},
                                        {"id": "b", "uses": "llm-process",
                                         "params": {"model": "gpt-4o", "prompt": "Again: {{text}}"}}],
          "edges": [{"source": "a", "target": "b"}]}


@pytest.fixture
def no_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("FLOWNB_LLM", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env beside the test
    monkeypatch.setattr(notice, "_told", set())


def test_a_named_model_with_no_key_warns_once_that_the_fake_answers(no_key: None) -> None:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(3):  # two nodes x three runs: one warning
            assert flownb.run(LLM_BP, {"text": "hello"}).ok
    told = [w for w in seen if issubclass(w.category, FakeModelWarning)]
    assert len(told) == 1, [str(w.message) for w in seen]
    assert str(told[0].message).startswith(
        "the node's params.model asks for model 'gpt-4o', but no API key is set")
    assert "FLOWNB_LLM=fake" in str(told[0].message)


def test_no_warning_when_the_fake_is_asked_for_or_no_model_is_named(
        no_key: None, monkeypatch: pytest.MonkeyPatch) -> None:
    unnamed = {"id": "unnamed", "nodes": [{"id": "a", "uses": "llm-process",
                                           "params": {"prompt": "Sum up: {{text}}"}}]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert flownb.run(unnamed, {"text": "hello"}).ok  # the default model: nothing to say
        monkeypatch.setenv("FLOWNB_LLM", "fake")
        assert flownb.run(LLM_BP, {"text": "hello"}).ok


@pytest.mark.timeout(60)
def test_the_cli_prints_it_once_on_stderr(tmp_path: Path) -> None:
    import yaml

    (tmp_path / "flow.yaml").write_text(yaml.safe_dump(LLM_BP))
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLOWNB_LLM", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM_MODEL")}
    p = subprocess.run([sys.executable, "-m", "flownb", "run", "flow.yaml", "--in-process",
                        "--inputs", '{"text": "hi"}'], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=50, check=False)
    assert p.returncode == 0, p.stderr
    assert p.stderr.count("asks for model 'gpt-4o'") == 1, p.stderr
    assert p.stderr.startswith("flownb: warning: the node's params.model asks for model 'gpt-4o'")
    assert '"status": "succeeded"' in p.stdout


@pytest.mark.timeout(60)
def test_the_cli_says_whose_environment_decides_for_a_run_on_workers(tmp_path: Path,
                                                                      redis_url: str) -> None:
    import yaml

    (tmp_path / "flow.yaml").write_text(yaml.safe_dump(LLM_BP))
    env = {k: v for k, v in os.environ.items()
           if k not in ("FLOWNB_LLM", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FLOWNB_LLM_MODEL")}
    p = subprocess.run([sys.executable, "-m", "flownb", "run", "flow.yaml", "--redis", redis_url,
                        "--no-wait"], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=50, check=False)
    assert p.returncode == 0, p.stderr
    line = next(ln for ln in p.stderr.splitlines() if "asks for model 'gpt-4o'" in ln)
    assert line.endswith("(in this shell: on workers, their environment decides)"), line
