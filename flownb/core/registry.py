"""Node implementations by name.

A blueprint says ``uses: "summarise"``; a registry maps that name to code. Names (never pickled
functions) are what cross process boundaries, so a worker runs a node only if it imported the
module that registered it — the same rule as RQ's importable functions, minus pickle.

Two shapes are accepted:

* a plain function ``fn(ctx) -> output | Result`` (sync or ``async def``);
* a class in PocketFlow's style with ``prep(ctx)``, ``exec(prep_res)`` and
  ``post(ctx, prep_res, exec_res)``; only ``exec`` is retried and timed out, so side effects in
  ``prep``/``post`` happen once.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar, overload

from .errors import RegistryError

if TYPE_CHECKING:
    from .blueprint import Blueprint
    from .context import NodeContext

#: a node implementation: a function (sync or async) or a Node class; decorators return it as is,
#: so ``@flownb.node`` keeps the decorated object's exact type for type checkers and IDEs
F = TypeVar("F", bound=Callable[..., Any])


class Result(NamedTuple):
    """What a node returns when it also picks an action: ``return Result(text, "approve")``."""

    output: Any
    action: str | None = None


class Node:
    """Base class for prep / exec / post nodes. Override what you need; ``exec`` is retried."""

    def prep(self, ctx: NodeContext) -> Any:
        return ctx.input

    def exec(self, prep_res: Any) -> Any:
        return prep_res

    def post(self, ctx: NodeContext, prep_res: Any, exec_res: Any) -> Any:
        return exec_res


class NodeImpl:
    """A registered implementation, split into the phases the runtime drives."""

    __slots__ = ("name", "exec", "prep", "post", "is_async", "prep_async", "post_async", "kind",
                 "doc", "source")

    def __init__(self, name: str, exec: Callable[..., Any], *, prep: Callable[..., Any] | None = None,
                 post: Callable[..., Any] | None = None, kind: str = "function", doc: str = "",
                 source: str = "") -> None:
        self.name = name
        self.exec = exec
        self.prep = prep
        self.post = post
        self.is_async = inspect.iscoroutinefunction(exec)
        self.prep_async = prep is not None and inspect.iscoroutinefunction(prep)
        self.post_async = post is not None and inspect.iscoroutinefunction(post)
        self.kind = kind
        self.doc = doc
        self.source = source

    @property
    def any_async(self) -> bool:
        return self.is_async or self.prep_async or self.post_async

    def __repr__(self) -> str:
        return f"<NodeImpl {self.name} ({self.kind}{', async' if self.any_async else ''})>"


#: built-in node types whose code lives in other modules, imported on first use (``"module:attr"``).
#: The core names none of them: the layer that implements a type adds it with
#: :func:`add_lazy_builtin` when it is imported (``flownb.engine``: noop, set, wait, …; the
#: facade ``flownb/__init__.py``: the llm-* types, so that ``import flownb`` imports no
#: ``flownb.llm`` module until a blueprint uses one).
_LAZY_BUILTINS: dict[str, str] = {}


def add_lazy_builtin(name: str, target: str) -> None:
    """Make ``name`` a built-in node type of every registry, implemented by ``target``
    (``"package.module:function"``), imported the first time a registry is asked for it."""
    _LAZY_BUILTINS[name] = target

#: names the runtime implements itself (they start child runs)
STRUCTURAL = frozenset({"subflow", "map"})


class Registry:
    """Names → implementations, plus blueprints addressable by id (for subflows)."""

    def __init__(self) -> None:
        self._impls: dict[str, NodeImpl] = {}
        self._blueprints: dict[str, Blueprint] = {}
        self._lock = threading.RLock()
        #: bumped on every change so compiled graphs notice a re-registered function
        self.version = 0

    # -- nodes -----------------------------------------------------------------------------------
    @overload
    def register(self, name: F, impl: None = None) -> F: ...

    @overload
    def register(self, name: str | None = None, impl: None = None) -> Callable[[F], F]: ...

    @overload
    def register(self, name: str, impl: F) -> F: ...

    def register(self, name: str | Callable[..., Any] | None = None,
                 impl: Callable[..., Any] | None = None) -> Any:
        """``@registry.register``, ``@registry.register("name")`` or ``register("name", fn)``.

        Registering a name again replaces it: re-running a notebook cell must just work.
        """
        if impl is not None:
            assert isinstance(name, str)
            self.add(name, impl)
            return impl
        if callable(name) and not isinstance(name, str):
            fn = name
            self.add(getattr(fn, "__name__", None) or _fail_name(fn), fn)
            return fn

        def deco(fn: F) -> F:
            self.add(name if isinstance(name, str) else fn.__name__, fn)
            return fn

        return deco

    def add(self, name: str, impl: Callable[..., Any] | type | Node | NodeImpl) -> NodeImpl:
        if not isinstance(name, str) or not name:
            raise RegistryError(f"node type names must be non-empty strings, got {name!r}")
        if name in STRUCTURAL:
            raise RegistryError(f"{name!r} is a built-in node type and cannot be replaced")
        ni = _to_impl(name, impl)
        with self._lock:
            self._impls[name] = ni
            self.version += 1
        return ni

    def register_callable(self, fn: Callable[..., Any]) -> str:
        """Register ``fn`` under ``module.qualname`` and return that name (used by the Builder)."""
        name = getattr(fn, "__qualname__", None) or ""
        if not name or "<lambda>" in name or "<locals>" in name:
            raise RegistryError(
                f"{fn!r} has no importable name; register it explicitly with a name "
                "(registry.add('my-node', fn)) so workers can find it")
        mod = getattr(fn, "__module__", "") or ""
        full = name if mod in ("", "__main__", "builtins") else f"{mod}.{name}"
        self.add(full, fn)
        return full

    def get(self, name: str, *, node_id: str | None = None) -> NodeImpl:
        impl = self._impls.get(name)
        if impl is not None:
            return impl
        impl = self._load_lazy(name)
        if impl is not None:
            return impl
        known = sorted(self.names())
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise RegistryError(
            f"unknown node type {name!r}{hint} Register it with @flownb.node({name!r}) in a module "
            "the executor imports (workers: --import MODULE)", node_id=node_id)

    def _load_lazy(self, name: str) -> NodeImpl | None:
        target = _LAZY_BUILTINS.get(name)
        if target is None:
            return None
        mod_name, attr = target.split(":")
        try:
            fn = getattr(importlib.import_module(mod_name), attr)
        except ImportError as exc:
            from .extras import install_hint

            raise RegistryError(f"built-in node type {name!r} needs "
                                f"{install_hint(exc.name or 'openai')}") from None
        with self._lock:
            impl = self._impls.get(name) or _to_impl(name, fn)
            self._impls[name] = impl
        return impl

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._impls or name in _LAZY_BUILTINS
                                          or name in STRUCTURAL)

    def names(self) -> Iterable[str]:
        return set(self._impls) | set(_LAZY_BUILTINS) | set(STRUCTURAL)

    # -- blueprints --------------------------------------------------------------------------------
    def add_blueprint(self, bp: Blueprint) -> Blueprint:
        with self._lock:
            self._blueprints[bp.id] = bp
            self.version += 1
        return bp

    def get_blueprint(self, blueprint_id: str, *, node_id: str | None = None) -> Blueprint:
        bp = self._blueprints.get(blueprint_id)
        if bp is None:
            known = sorted(self._blueprints)
            raise RegistryError(f"unknown blueprint {blueprint_id!r} (registered: {known}); add it "
                                "with registry.add_blueprint(bp)", node_id=node_id)
        return bp

    def has_blueprint(self, blueprint_id: str) -> bool:
        return blueprint_id in self._blueprints

    @property
    def blueprints(self) -> dict[str, Blueprint]:
        return dict(self._blueprints)

    def import_modules(self, modules: Iterable[str]) -> None:
        """Import user modules whose decorators register nodes (``flownb worker --import``)."""
        for m in modules:
            try:
                importlib.import_module(m)
            except ImportError as exc:
                raise RegistryError(f"cannot import node module {m!r}: {exc}") from exc


def _fail_name(fn: Any) -> str:
    raise RegistryError(f"cannot infer a name for {fn!r}; pass one: register('name', fn)")


def _to_impl(name: str, impl: Any) -> NodeImpl:
    if isinstance(impl, NodeImpl):
        return impl
    if isinstance(impl, type):
        if not issubclass(impl, Node) and not hasattr(impl, "exec"):
            raise RegistryError(f"class {impl.__name__} registered as {name!r} needs an exec() method")
        impl = impl()
    if isinstance(impl, Node) or (not inspect.isfunction(impl) and hasattr(impl, "exec")
                                  and hasattr(impl, "prep")):
        return NodeImpl(name, impl.exec, prep=impl.prep, post=impl.post, kind="class",
                        doc=inspect.getdoc(impl) or "", source=type(impl).__module__)
    if not callable(impl):
        raise RegistryError(f"{name!r}: expected a function or a Node class, got {type(impl).__name__}")
    return NodeImpl(name, impl, doc=inspect.getdoc(impl) or "",
                    source=getattr(impl, "__module__", "") or "")


default_registry = Registry()


@overload
def node(name: F, *, registry: Registry | None = None) -> F: ...


@overload
def node(name: str | None = None, *, registry: Registry | None = None) -> Callable[[F], F]: ...


def node(name: str | Callable[..., Any] | None = None, *,
         registry: Registry | None = None) -> Any:
    """Decorator registering a node type in the default registry: ``@flownb.node("summarise")``
    (or bare ``@flownb.node``, named after the function). Returns the function or class
    unchanged, with its type."""
    return (registry or default_registry).register(name)
