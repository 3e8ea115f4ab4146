"""Hostile blueprint files (issue 11.14): alias bombs, recursive aliases, endless or blocking
inputs, and a file over the size limit — each a clear BlueprintError at load, never a hang or a
raw ValueError later in digest / == / to_json."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

import flownb
from flownb.core.errors import BlueprintError
from flownb.core.limits import set_limits

LAUGHS = "\n".join(["id: lol", "nodes:", "  - id: a", "    uses: noop", "    params:",
                    '      a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
    f"      {c}: &{c} [{','.join(['*' + p] * 9)}]" for p, c in zip("abcdefgh", "bcdefghi")]) + "\n"


@pytest.fixture(autouse=True)
def _reset_limits():
    set_limits()
    yield
    set_limits()


def _validate(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "flownb", "validate", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("doc", [
    "id: r\nnodes:\n  - id: a\n    uses: noop\n    params: &p {self: *p}\n",
    "id: r\nnodes:\n  - id: a\n    uses: noop\n    params:\n      x: &p [1, [2, *p]]\n",
])
def test_recursive_alias_is_refused_at_load(doc: str, tmp_path: Path) -> None:
    with pytest.raises(BlueprintError, match=r"line \d+ column \d+: recursive YAML alias"):
        flownb.Blueprint.from_yaml(doc)
    with pytest.raises(BlueprintError, match="recursive YAML alias"):
        flownb.load(doc)
    f = tmp_path / "rec.yaml"
    f.write_text(doc)
    with pytest.raises(BlueprintError) as info:
        flownb.load(f)
    assert info.value.path == str(f)


def test_billion_laughs_is_refused_before_expansion(tmp_path: Path) -> None:
    assert len(LAUGHS) < 700
    with pytest.raises(BlueprintError, match=r"aliases expand the document from \d+ to "
                                             r"490,329,075 nodes.*FLOWNB_MAX_YAML_ALIAS_NODES"):
        flownb.Blueprint.from_yaml(LAUGHS)
    f = tmp_path / "lol.yaml"
    f.write_text(LAUGHS)
    out = _validate(str(f))
    assert out.returncode == 1 and "alias bomb" in out.stderr and "Traceback" not in out.stderr


def test_ordinary_aliases_still_load_and_the_limit_is_configurable() -> None:
    doc = ("id: shared\nnodes:\n  - {id: a, uses: noop, config: &cfg {retries: 2, timeout_s: 5}}\n"
           "  - {id: b, uses: noop, config: *cfg}\n  - {id: c, uses: noop, config: *cfg}\n")
    bp = flownb.Blueprint.from_yaml(doc)
    assert [n.config.retries for n in bp.nodes] == [2, 2, 2]
    assert flownb.Blueprint.from_json(bp.to_json()) == bp and bp.digest
    set_limits(max_alias_nodes=2)
    with pytest.raises(BlueprintError, match="more than the 2 extra nodes allowed"):
        flownb.Blueprint.from_yaml(doc)


def test_validate_refuses_devices_fifos_and_directories(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    for path, kind in (("/dev/zero", "a device"), (str(fifo), "a FIFO"), (str(tmp_path), "a directory")):
        with pytest.raises(BlueprintError, match=f"it is {kind}"):
            flownb.Blueprint.load(path)
    out = _validate("/dev/zero", str(fifo))
    assert out.returncode == 1, out
    assert "/dev/zero: cannot read blueprint file: it is a device" in out.stderr
    assert f"{fifo}: cannot read blueprint file: it is a FIFO" in out.stderr
    assert "Traceback" not in out.stderr


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "big.json"
    f.write_text('{"id": "x", "nodes": [{"id": "a", "uses": "noop"}]}' + " " * 200)
    assert flownb.Blueprint.load(f).id == "x"
    out = _validate(str(f), env={"FLOWNB_MAX_BLUEPRINT_BYTES": "100"})
    assert out.returncode == 1
    assert "larger than the 100-byte limit" in out.stderr and "FLOWNB_MAX_BLUEPRINT_BYTES" in out.stderr


def test_lint_of_many_parallel_nodes_keeps_its_findings() -> None:
    """The linear lint still sees orphans and start nodes right (speed figures: bench/lint.py)."""
    n = 3000
    nodes = [{"id": f"n{i}", "uses": "noop"} for i in range(n)] + [
        {"id": "loop_a", "uses": "noop"}, {"id": "loop_b", "uses": "noop"}]
    edges = [{"source": "loop_a", "target": "loop_b"}, {"source": "loop_b", "target": "loop_a"}]
    problems = flownb.Blueprint.from_dict({"id": "wide", "nodes": nodes, "edges": edges}).lint()
    assert sorted(p.node_id for p in problems if p.code == "orphan") == ["loop_a", "loop_b"]
