"""The client of the distributed executor: submit, wait, follow, cancel, re-attach.

``submit`` returns at once with a :class:`RunHandle`; waiting uses a blocking ``XREAD`` on the
run's event stream, so no client polls. The handle holds nothing but the run id and a
connection, which is why :func:`attach` from another process or kernel gives the same object.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ..blueprint import Blueprint, load
from ..errors import ExecutorError, LintError, RunTimeout
from ..events import Event
from ..graph import analyse
from ..lint import lint
from ..registry import Registry, default_registry
from ..result import RunResult
from .jobs import enqueue_items, make_queue
from .settings import RedisSettings, check_server
from .store import RedisStore, StoreSettings

if TYPE_CHECKING:
    import redis


def _connect(redis_: str | RedisSettings | redis.Redis | None) -> tuple[redis.Redis, str]:
    if redis_ is None or isinstance(redis_, str):
        settings = RedisSettings.from_url(redis_)
        url = settings.resolved_url()
        client = RedisSettings.from_url(url).connect()
        return client, url
    if isinstance(redis_, RedisSettings):
        return redis_.connect(), redis_.resolved_url()
    kw = redis_.connection_pool.connection_kwargs
    url = f"redis://{kw.get('host', '?')}:{kw.get('port', '?')}/{kw.get('db', 0)}" if "host" in kw \
        else f"unix://{kw.get('path', '?')}?db={kw.get('db', 0)}"
    return redis_, url


class DistributedExecutor:
    """Runs blueprints on Redis with RQ workers (start them with ``flownb worker`` or a
    :class:`~flownb.notebook.LocalCluster`). With ``redis=None`` it uses ``FLOWNB_REDIS_URL`` /
    ``REDIS_URL``, else a private embedded ``redis-server``."""

    def __init__(self, redis: str | RedisSettings | Any | None = None, *,
                 registry: Registry | None = None, prefix: str = "flownb",
                 queue_name: str = "flownb", settings: StoreSettings | None = None,
                 check: bool = True) -> None:
        self.conn, self.url = _connect(redis)
        if check:
            check_server(self.conn)
        self.registry = registry or default_registry
        self.prefix = prefix
        self.queue_name = queue_name
        self.store = RedisStore(self.conn, prefix=prefix, settings=settings)
        self.queue = make_queue(self.conn, queue_name)

    def __repr__(self) -> str:
        return f"<DistributedExecutor {self.url} queue={self.queue_name!r}>"

    # -- submit -------------------------------------------------------------------------------------
    def submit(self, blueprint: Blueprint | Mapping[str, Any] | str,
               inputs: Mapping[str, Any] | None = None, *, run_id: str | None = None) -> RunHandle:
        """Store the blueprint and inputs, queue the start nodes, return immediately."""
        bp = load(blueprint)  # type: ignore[arg-type]
        key = ("submit-lint", id(self.registry), self.registry.version)
        errors = bp._cache.get(key)
        if errors is None:  # structure only: workers check 'uses' against what they imported
            errors = [p for p in lint(bp, self.registry)
                      if p.severity == "error" and p.code != "unknown-uses"]
            bp._cache[key] = errors
        if errors:
            raise LintError(errors, path=f"blueprint {bp.id!r}")
        run_id = run_id or uuid.uuid4().hex[:12]
        if "|" in run_id or not run_id:
            raise ExecutorError(f"run ids may not be empty or contain '|': {run_id!r}")
        bundle = self._bundle(bp)
        graph = bp._cache.get("analysed")
        if graph is None:
            graph = bp._cache["analysed"] = analyse(bp)[0]
        ready = self.store.start_run(run_id, bp, graph, dict(inputs or {}), bundle=bundle)
        enqueue_items(self.queue, run_id, [list(x) for x in ready])
        return RunHandle(self, run_id, bp)

    def _bundle(self, bp: Blueprint) -> dict[str, str]:
        """Every blueprint a subflow/map may start, stored by digest with the run."""
        bundle: dict[str, str] = {}
        todo = [bp]
        while todo:
            cur = todo.pop()
            for n in cur.nodes:
                if n.uses not in ("subflow", "map"):
                    continue
                bid = n.params.get("blueprintId") or n.params.get("blueprint_id") or n.params.get("blueprint")
                if not bid or bid in bundle:
                    continue
                child = self.registry.get_blueprint(str(bid), node_id=n.id)
                bundle[str(bid)] = self.store.upload_blueprint(child)
                todo.append(child)
        return bundle

    def run(self, blueprint: Blueprint | Mapping[str, Any] | str,
            inputs: Mapping[str, Any] | None = None, *, timeout: float | None = None,
            raise_on_error: bool = False) -> RunResult:
        """Submit and wait: the distributed twin of :func:`flownb.run`."""
        return self.submit(blueprint, inputs).result(timeout, raise_on_error=raise_on_error)

    def attach(self, run_id: str) -> RunHandle:
        if not self.store.meta(run_id):
            raise ExecutorError(f"no run {run_id!r} in {self.url} (prefix {self.prefix!r}); it may "
                                "have expired", run_id=run_id)
        return RunHandle(self, run_id)

    def runs(self, limit: int = 20) -> list[dict[str, str]]:
        return self.store.list_runs(limit)

    def workers(self) -> dict[str, dict[str, Any]]:
        import json

        raw = self.conn.hgetall(self.store.keys.workers)
        out = {}
        for k, v in raw.items():
            info = json.loads(v)
            if time.time() - float(info.get("seen", 0)) < 30:
                out[k.decode() if isinstance(k, bytes) else k] = info
        return out


class RunHandle:
    """A submitted run. ``result()`` / ``await handle`` wait without polling."""

    def __init__(self, executor: DistributedExecutor, run_id: str, blueprint: Blueprint | None = None) -> None:
        self.executor = executor
        self.run_id = run_id
        self._blueprint = blueprint

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id} {self.status()}>"

    @property
    def store(self) -> RedisStore:
        return self.executor.store

    @property
    def blueprint(self) -> Blueprint:
        if self._blueprint is None:
            meta = self.store.meta(self.run_id)
            self._blueprint = self.store.load_blueprint(meta.get("blueprint", ""))
        return self._blueprint

    def status(self) -> str:
        return self.store.status(self.run_id) or "expired"

    def done(self) -> bool:
        return self.status() not in ("running",)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` passes (False)."""
        return self.store.wait_done(self.run_id, timeout)

    def result(self, timeout: float | None = None, *, raise_on_error: bool = False) -> RunResult:
        if not self.wait(timeout):
            raise RunTimeout(f"still running after {timeout}s (the run goes on; wait again, or "
                             "cancel it)", run_id=self.run_id)
        res = self.store.load_result(self.run_id)
        return res.raise_for_status() if raise_on_error else res

    def __await__(self) -> Any:
        return asyncio.to_thread(self.result).__await__()

    async def aresult(self, timeout: float | None = None) -> RunResult:
        return await asyncio.to_thread(self.result, timeout)

    def cancel(self) -> bool:
        """Stop the run on every worker: queued nodes never start, running ones are discarded."""
        return self.store.cancel(self.run_id) > 0

    def events(self, *, follow: bool = False, after: str = "0-0",
               timeout: float | None = None) -> Iterator[Event]:
        if follow:
            yield from self.store.follow(self.run_id, after=after, timeout_s=timeout)
        else:
            yield from self.store.events(self.run_id, after=after, count=100_000)

    def widget(self) -> Any:
        """A live ipywidgets view of this run (graph coloured by state, progress, nodes, error),
        fed from the run's event stream in a background thread; a tqdm bar outside Jupyter."""
        from ..notebook import widget_for

        return widget_for(self)

    def _repr_html_(self) -> str:
        return (f"<b>flownb run</b> <code>{self.run_id}</code> — {self.status()} "
                f"(<code>handle.widget()</code> for a live view, <code>handle.result()</code> to wait)")

    def on_event(self, fn: Callable[[Event], None], *, timeout: float | None = None) -> None:
        for e in self.events(follow=True, timeout=timeout):
            fn(e)


def attach(run_id: str, *, redis: str | RedisSettings | Any | None = None,
           prefix: str = "flownb", queue_name: str = "flownb") -> RunHandle:
    """Re-attach to a run from any process or kernel that reaches the same Redis."""
    return DistributedExecutor(redis, prefix=prefix, queue_name=queue_name).attach(run_id)
