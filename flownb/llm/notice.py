"""Say so when the offline fake answers for a model someone named.

Without a key, flownb's LLM nodes answer with the offline fake, so every tutorial runs with no
network. That default must not be silent for someone who wrote ``model: gpt-4o`` and forgot
``OPENAI_API_KEY``: the run "succeeds" with canned text. :func:`warn_once` emits one
:class:`FakeModelWarning` per model per process (a batch of 1000 runs says it once), and the CLI
prints the same line on stderr before it runs (:func:`blueprint_notices`).
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Iterable
from typing import Any

__all__ = ["FakeModelWarning", "blueprint_notices", "message", "print_notices", "warn_once"]

_lock = threading.Lock()
_told: set[str] = set()


class FakeModelWarning(UserWarning):
    """A model was named but no key is set, so the offline fake model answers instead."""


def message(model: str, source: str) -> str:
    return (f"{source} asks for model {model!r}, but no API key is set (OPENAI_API_KEY, or "
            f"OPENAI_BASE_URL for a local server) and FLOWNB_LLM is unset, so the offline fake "
            f"model answers instead of {model!r}; set the key for real answers, or "
            f"FLOWNB_LLM=fake to say the fake is meant")


def _first_time(model: str) -> bool:
    with _lock:
        if model in _told:
            return False
        _told.add(model)
        return True


def warn_once(model: str, source: str) -> None:
    """Warn (once per model in this process) that the fake answers for ``model``."""
    if _first_time(model):
        warnings.warn(message(model, source), FakeModelWarning, stacklevel=3)


def blueprint_notices(blueprints: Iterable[Any]) -> list[str]:
    """The notices for the LLM nodes of ``blueprints`` (each model once, and then never warned
    again in this process): what the CLI prints before a run."""
    from .config import fake_for_named_model
    from .errors import LLMConfigError

    out: list[str] = []
    for bp in blueprints:
        for n in bp.nodes:
            if not str(n.uses).startswith("llm-"):
                continue
            try:
                named = fake_for_named_model(n.params)
            except LLMConfigError:
                continue  # the run reports a bad setting itself
            if named is not None and _first_time(named[0]):
                out.append(message(*named))
    return out


def print_notices(blueprints: Iterable[Any], *, on_workers: bool) -> None:
    """Print :func:`blueprint_notices` on stderr as the CLI's warnings; ``on_workers``: the run
    goes to workers, whose own environment (not this shell's) decides between key and fake."""
    where = " (in this shell: on workers, their environment decides)" if on_workers else ""
    for line in blueprint_notices(blueprints):
        print(f"flownb: warning: {line}{where}", file=sys.stderr)
