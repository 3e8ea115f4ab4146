"""What a node that never finished is called once its run has ended — one rule for every view.

Why one place: a run's :class:`~flownb.core.result.RunResult` (both executors build one), the
notebook's live widget (which folds events before the result arrives) and the drawings (which
colour subflow children nobody reported on) each used to decide this alone, and disagreed: after
``cancel()`` the widget said ``cancelled`` where ``result().nodes`` said ``pending``, and nodes
that would never run stayed "pending" in the widget for ever. The rule:

* a run still going (``running``, ``waiting``, ``pending``) changes nothing: its nodes may run;
* the node whose failure ended the run is ``failed``;
* a node that was running, retrying or waiting for an answer when the run ended is
  ``cancelled`` (its work was stopped);
* a node that never started is ``skipped`` when the run succeeded (the run did not need it: an
  untaken branch, an unused fallback) and ``cancelled`` when the run failed or was cancelled
  (the run stopped before it got there).

Every other state (``succeeded``, ``failed``, ``skipped``, ``replaced``, ``cancelled``) is final
and kept.
"""

from __future__ import annotations

from collections.abc import Mapping

#: a run in one of these has ended: none of its nodes will run any more
ENDED = frozenset({"succeeded", "failed", "cancelled"})
#: a node in one of these when its run ended never finished
UNFINISHED = frozenset({"pending", "running", "retrying", "waiting"})


def settled(state: str, run_status: str, *, culprit: bool = False) -> str:
    """``state`` of a node once its run ended with ``run_status`` (see the module docstring).

    ``culprit``: this node's failure ended the run.
    """
    if run_status not in ENDED or state not in UNFINISHED:
        return state
    if culprit:
        return "failed"
    if state == "pending" and run_status == "succeeded":
        return "skipped"
    return "cancelled"


def settle_all(states: Mapping[str, str], run_status: str,
               culprit: str | None = None) -> dict[str, str]:
    """:func:`settled` applied to every node of ``states`` (node id -> state)."""
    return {n: settled(s, run_status, culprit=n == culprit) for n, s in states.items()}


def unreached_child(parent: str | None, child_ran: bool) -> str:
    """The state to draw for a subflow child node no event or result mentions, given its
    subflow node's state ``parent`` and whether any child node of that subflow is known to have
    run: a skipped subflow ran none of its nodes; a finished one ran exactly those it reported
    (the others were skipped inside it); a cancelled or failed one will not run the rest."""
    if parent == "skipped" or (parent == "succeeded" and child_ran):
        return "skipped"
    if parent in ("cancelled", "failed"):
        return "cancelled"
    return "pending"


__all__ = ["ENDED", "UNFINISHED", "settle_all", "settled", "unreached_child"]
