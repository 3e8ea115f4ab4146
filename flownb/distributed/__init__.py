"""The distributed executor: the same blueprints on Redis with RQ workers.

Importing this package does not import redis or rq; they load when a client or worker connects.
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
