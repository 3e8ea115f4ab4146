"""Edge ``transform``: an expression that turns what an edge carries into the target's input.

Flowcraft blueprints use it (``"transform": "input.items"``) and it used to be ignored, which
silently fed a node the wrong data. It is written in flownb's condition language
(:mod:`flownb.core.conditions`) — parsed once, never ``eval`` — and sees ``input`` (the source's
output), ``context`` / ``state`` (the run's state), ``outputs``, and node ids and state keys by
name, like a condition. Both executors call :func:`transformed_input` where they build a node's
input, so in-process and distributed runs agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .context import OUTPUTS_PREFIX, Reader

if TYPE_CHECKING:
    from .graph import CNode


class _ReadMapping(Mapping[str, Any]):
    """The state (or the outputs, with ``prefix``) as a read-only mapping over a reader."""

    def __init__(self, read: Reader, prefix: str = "") -> None:
        self._read = read
        self._prefix = prefix

    def __getitem__(self, key: str) -> Any:
        return self._read(self._prefix + key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def _resolver(value: Any, read: Reader) -> Callable[[str], Any]:
    def resolve(name: str) -> Any:
        if name == "input":
            return value
        if name in ("context", "state"):
            return _ReadMapping(read)
        if name == "outputs":
            return _ReadMapping(read, OUTPUTS_PREFIX)
        try:
            return read(name)
        except KeyError:
            return read(OUTPUTS_PREFIX + name)

    return resolve


def transformed_input(cn: CNode, sources: Sequence[str], value: Any, read: Reader) -> Any:
    """``value`` (the input built for ``cn``) after the transforms of the edges it came over.

    One source: the transform of that edge applies to the value. Several (an ``all`` join's
    ``{source: output}``): each source's entry is transformed by its own edge's expression.
    """
    transforms = cn.transforms
    if not transforms or not sources:
        return value
    if len(sources) == 1:
        t = transforms.get(sources[0])
        return value if t is None else t.value(_resolver(value, read))
    if not isinstance(value, Mapping):
        return value
    out = dict(value)
    for src, t in transforms.items():
        if src in out:
            out[src] = t.value(_resolver(out[src], read))
    return out
