"""Issue 19, item 7: ``load_dir`` of two folders never swaps subflows. After
``la = load_dir(A); load_dir(B)`` with both defining ``sub2``, A's main still runs A's ``sub2``
(in process and on a real worker, executions counted with Redis INCR): the second folder is
refused, naming both files, unless it loads into its own registry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
import redis

import flownb
from flownb.distributed.client import DistributedExecutor

import harden_nodes  # registers the node types in this process too
from conftest import Workers

pytestmark = pytest.mark.timeout(120)


def folder(root: Path, name: str, url: str, tag: str, sub: str) -> Path:
    d = root / name
    d.mkdir()
    (d / "main.json").write_text(json.dumps({"id": f"main-{name}-{tag}", "nodes": [
        {"id": "call", "uses": "subflow", "params": {"blueprintId": sub}}]}))
    (d / "sub2.json").write_text(json.dumps({"id": sub, "nodes": [
        {"id": "work", "uses": "harden-count",
         "params": {"redis": url, "count": f"{tag}:{name}"}}]}))
    return d


def own_registry() -> flownb.Registry:
    reg = flownb.Registry()
    reg.register("harden-count")(harden_nodes.count)
    return reg


def test_a_second_folder_cannot_swap_the_first_ones_subflow(tmp_path: Path, redis_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    sub = f"sub2-{tag}"
    a = folder(tmp_path, "A", redis_url, tag, sub)
    b = folder(tmp_path, "B", redis_url, tag, sub)
    r = redis.Redis.from_url(redis_url)
    la = flownb.load_dir(a)
    with pytest.raises(flownb.BlueprintError) as ei:
        flownb.load_dir(b)
    msg = str(ei.value)
    assert repr(sub) in msg and str(a / "sub2.json") in msg and str(b / "sub2.json") in msg
    assert not flownb.default_registry.has_blueprint(f"main-B-{tag}"), "B was half registered"
    # A's main runs A's sub2, in process ...
    res = flownb.run(la[f"main-A-{tag}"], {})
    assert res.status == "succeeded"
    assert (int(r.get(f"{tag}:A") or 0), int(r.get(f"{tag}:B") or 0)) == (1, 0)
    # ... and on a real worker
    ws = Workers(redis_url, modules=(*Workers.MODULES, "harden_nodes"))
    try:
        ws.start(1)
        out = DistributedExecutor(redis_url).run(la[f"main-A-{tag}"], {}, timeout=60)
        assert out.status == "succeeded"
    finally:
        ws.close()
    assert (int(r.get(f"{tag}:A") or 0), int(r.get(f"{tag}:B") or 0)) == (2, 0)
    # B in its own registry runs B's sub2
    reg = own_registry()
    lb = flownb.load_dir(b, registry=reg)
    assert flownb.run(lb[f"main-B-{tag}"], {}, registry=reg).status == "succeeded"
    assert (int(r.get(f"{tag}:A") or 0), int(r.get(f"{tag}:B") or 0)) == (2, 1)


def test_reloading_a_folder_after_an_edit_replaces_its_own(tmp_path: Path, redis_url: str) -> None:
    tag = uuid.uuid4().hex[:8]
    sub = f"sub2-{tag}"
    a = folder(tmp_path, "A", redis_url, tag, sub)
    reg = own_registry()
    flownb.load_dir(a, registry=reg)
    doc = json.loads((a / "sub2.json").read_text())
    doc["nodes"][0]["params"]["count"] = f"{tag}:edited"
    (a / "sub2.json").write_text(json.dumps(doc))
    la = flownb.load_dir(a, registry=reg)  # the same folder: its own sub2 is replaced
    assert flownb.run(la[f"main-A-{tag}"], {}, registry=reg).status == "succeeded"
    assert int(redis.Redis.from_url(redis_url).get(f"{tag}:edited") or 0) == 1
    # an identical blueprint from elsewhere is no clash (it cannot change what runs)
    other = tmp_path / "copy"
    other.mkdir()
    (other / "sub2.json").write_text((a / "sub2.json").read_text())
    flownb.load_dir(other, registry=reg)
