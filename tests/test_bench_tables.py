"""The benchmark table in README.md and bench/README.md is generated, never copied by hand.

Both files hold, between ``<!-- bench:table:start -->`` and ``<!-- bench:table:end -->``, exactly
what ``python -m bench.tables`` makes from ``bench/published.json`` (the last published full run),
so the two cannot disagree with each other or with the run (issue 21: the README's table said
1.44× where its prose said 1.8–3.2×).
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import tables  # noqa: E402


def _published() -> dict:
    return json.loads(tables.PUBLISHED.read_text())


@pytest.mark.parametrize("doc", tables.DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_doc_holds_the_table_generated_from_the_published_run(doc: Path) -> None:
    got = tables.region(doc.read_text())
    assert got is not None, f"{doc}: no bench:table region"
    assert got == tables.render(_published()), (
        f"{doc}: the bench table differs from bench/published.json; run `python -m bench.tables`")


def test_the_published_run_is_a_full_run_with_every_benchmark() -> None:
    from bench.__main__ import BENCHMARKS

    pub = _published()
    assert pub["quick"] is False
    assert set(pub["benchmarks"]) == {b.name for b in BENCHMARKS}
    # trimmed: no samples kept, and trimming again changes nothing
    assert not any("samples" in f for b in pub["benchmarks"].values() for f in b["figures"].values())
    assert tables.trim(pub) == pub


def test_write_docs_replaces_a_stale_region_and_keeps_the_rest(tmp_path: Path) -> None:
    pub = _published()
    doc = tmp_path / "doc.md"
    doc.write_text(f"# Title\n\nbefore\n\n{tables.START}\n| stale | 1.44 × |\n{tables.END}\n\nafter\n")
    tables.write_docs(pub, (doc,))
    text = doc.read_text()
    assert "| stale |" not in text
    assert tables.region(text) == tables.render(pub)
    assert text.startswith("# Title\n\nbefore\n\n") and text.endswith("\n\nafter\n")
    tables.write_docs(pub, (doc,))  # idempotent
    assert doc.read_text() == text


def test_a_changed_figure_changes_the_table() -> None:
    pub = _published()
    changed = copy.deepcopy(pub)
    fig = changed["benchmarks"]["redis_cost"]["figures"]["chain.cmds_per_node"]
    fig["median"] = fig["min"] = fig["max"] = 4321.0
    assert "4321 commands" not in tables.render(pub)
    assert "4321 commands" in tables.render(changed)


def test_a_doc_without_markers_is_refused_with_the_fix(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text("# no table here\n")
    with pytest.raises(SystemExit, match="no <!-- bench:table:start -->.*add the two markers"):
        tables.write_docs(_published(), (doc,))
    assert doc.read_text() == "# no table here\n"


def test_a_quick_run_is_not_published(tmp_path: Path) -> None:
    res = tmp_path / "results-quick.json"
    res.write_text(json.dumps({**_published(), "quick": True}))
    proc = subprocess.run([sys.executable, "-m", "bench.tables", "--from", str(res), "--print"],
                          cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "is a --quick run: publish a full run's JSON" in proc.stderr


def test_print_shows_the_same_table_as_the_docs() -> None:
    proc = subprocess.run([sys.executable, "-m", "bench.tables", "--print"], cwd=str(ROOT),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.rstrip("\n") == tables.region(tables.DOCS[0].read_text())
