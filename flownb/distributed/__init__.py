"""The distributed executor: the same blueprints on Redis with RQ workers.

Importing this package does not import redis or rq; they load when a client or worker connects.

Layer: distributed. It owns the Redis store, keys and Lua scripts, the client (``RunHandle``,
``DistributedExecutor``), the worker and the embedded server. It may import :mod:`flownb.core`,
:mod:`flownb.engine`, :mod:`flownb.render` and :mod:`flownb.llm`, redis and rq — never
``flownb.notebook`` or ``flownb.cli``, nor ipywidgets or IPython: the notebook layer installs its
views (:mod:`flownb.core.display`) and its module-shipping hook when it is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import DistributedExecutor, RunHandle, attach
    from .server import EmbeddedRedis
    from .settings import RedisSettings
    from .store import StoreSettings

__all__ = ["DistributedExecutor", "RunHandle", "attach", "EmbeddedRedis", "RedisSettings",
           "StoreSettings"]

_WHERE = {"DistributedExecutor": "client", "RunHandle": "client", "attach": "client",
          "EmbeddedRedis": "server", "RedisSettings": "settings", "StoreSettings": "store"}


def __getattr__(name: str) -> Any:
    mod = _WHERE.get(name)
    if mod is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"{__name__}.{mod}"), name)
