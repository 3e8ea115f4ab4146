"""One live :class:`~flownb.notebook.LocalCluster` per (Redis, prefix, queue) in a process.

Why: a kernel that re-runs ``cluster = LocalCluster(2)`` keeps the old object alive through
``Out[]`` (and the user's other names for it); without this the queue would be served by 4
workers, two of them from a cluster the user no longer sees. The new cluster closes the old one
on the same Redis, prefix and queue, and one line on stderr says so. Clusters are held by weak
reference: the registry never keeps one alive.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import weakref
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .cluster import LocalCluster

__all__ = ["new_cluster_name", "replace_live"]

_cluster_ids = itertools.count(1)
#: (Redis URL, prefix, queue) -> the live cluster serving it in this process
_live_clusters: dict[tuple[str, str, str], weakref.ReferenceType[LocalCluster]] = {}
_live_lock = threading.Lock()


def new_cluster_name() -> str:
    """A name unique among this machine's clusters (worker names derive from it)."""
    return f"nb{os.getpid()}-{next(_cluster_ids)}"


def replace_live(cluster: LocalCluster) -> None:
    """Register ``cluster`` as the one for its queue, closing the one it replaces."""
    key = (cluster.url, cluster.prefix, cluster.queue_name)
    with _live_lock:
        ref = _live_clusters.get(key)
        old = ref() if ref is not None else None
        _live_clusters[key] = weakref.ref(cluster)
    if old is not None and old is not cluster and not old.closed:
        print(f"flownb: closing the previous LocalCluster {old.name} ({old.n_workers} workers) on "
              f"queue {cluster.queue_name!r}: one live cluster per queue in a kernel",
              file=sys.stderr)
        old.close()
