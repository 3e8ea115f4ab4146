"""Test helpers shared by the human-in-the-loop, streaming and time-travel tests."""

from __future__ import annotations

from conftest import Workers


class HitlWorkers(Workers):
    """Real ``flownb worker`` processes that import the node types of ``hitl_nodes``."""

    MODULES: tuple[str, ...] = ("hitl_nodes",)  # type: ignore[assignment]


def hitl_workers(url: str) -> Workers:
    return HitlWorkers(url)
