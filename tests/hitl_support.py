"""Test helpers shared by the human-in-the-loop, streaming and time-travel tests."""

from __future__ import annotations

from conftest import Workers


def hitl_workers(url: str) -> Workers:
    """Real ``flownb worker`` processes that import the node types of ``hitl_nodes``."""
    return Workers(url, modules=("hitl_nodes",))
