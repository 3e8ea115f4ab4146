"""SVG from DOT through Graphviz's ``dot``: the package when installed, the executable otherwise."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .dot import to_dot

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint


def to_svg(bp: Blueprint | Mapping[str, Any], **kw: Any) -> str | None:
    """The drawing as SVG text, or None when Graphviz's ``dot`` executable is not installed.

    A missing ``dot`` is an ordinary situation (pip cannot install it), so it is reported by the
    return value, not an exception. Keyword arguments are those of :func:`to_dot`. Uses the
    ``graphviz`` package when importable and runs ``dot`` directly otherwise, so the core needs
    neither the package nor IPython.
    """
    source = to_dot(bp, **kw)
    if shutil.which("dot") is None:
        return None
    try:
        import graphviz  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        return _svg_via_subprocess(source)
    try:
        svg = graphviz.Source(source).pipe(format="svg", encoding="utf-8", quiet=True)
    except graphviz.ExecutableNotFound:
        return None
    return str(svg)


def _svg_via_subprocess(source: str) -> str | None:
    """Run ``dot -Tsvg`` without the graphviz package; None if the executable vanished."""
    try:
        proc = subprocess.run(["dot", "-Tsvg"], input=source.encode("utf-8"), capture_output=True,
                              check=False, timeout=60)
    except FileNotFoundError:
        return None
    if proc.returncode != 0:
        raise RuntimeError(f"dot failed: {proc.stderr.decode('utf-8', 'replace').strip()}")
    return proc.stdout.decode("utf-8")
