"""``flownb.runs()`` / ``cluster.runs()``: browse runs in a notebook, open one, compare two.

Why a widget: finding yesterday's run again, seeing its path on the graph, and comparing two runs
after a prompt change are questions a person asks while looking, not by writing queries. The
table shows status, blueprint, start, duration, nodes, tokens and cost, newest first, filtered
by status and blueprint and paged, so 10,000 runs in Redis cost one listing pass per page
(:mod:`flownb.distributed.runlist`) and the runs of this kernel cost nothing
(:mod:`flownb.engine.runlog`). A run's id button opens its :class:`RunWidget` (live while it
runs) below the table; ticking two runs of one blueprint and pressing *Compare* shows
:func:`flownb.diff_runs`'s side-by-side diff with the differing nodes orange on the graph.
"""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING, Any

from ..core.errors import FlownbError
from ..core.rundiff import RunDiff, diff_results
from ..core.runrows import RunPage, RunRow

if TYPE_CHECKING:
    from ..core.blueprint import Blueprint
    from ..core.result import RunResult
    from ..distributed.client import DistributedExecutor

__all__ = ["LocalRuns", "RedisRuns", "RunsBrowser", "runs"]

_ALL = "(all)"


class LocalRuns:
    """The in-process runs of this kernel (:mod:`flownb.engine.runlog`)."""

    def page(self, **kw: Any) -> RunPage:
        from ..engine import runlog

        return runlog.list_page(**kw)

    def result(self, run_id: str) -> tuple[RunResult, Blueprint]:
        from ..engine import runlog

        rec = runlog.get(run_id)
        if rec.result is None:
            raise FlownbError("the run is still running in this process; compare it once it "
                              "returned", run_id=run_id)
        return rec.result, rec.blueprint

    def widget(self, run_id: str) -> Any:
        from ..engine import runlog
        from .progress import ProgressView
        from .widget import RunWidget

        rec = runlog.get(run_id)
        view = ProgressView(rec.blueprint, run_id=run_id)
        if rec.result is not None:
            view.finish(rec.result)
        return RunWidget(view)


class RedisRuns:
    """The runs stored in one Redis under one prefix (:mod:`flownb.distributed.runlist`)."""

    def __init__(self, executor: DistributedExecutor) -> None:
        self.executor = executor

    def page(self, **kw: Any) -> RunPage:
        from ..distributed import runlist

        with self.executor._redis("listing runs"):
            return runlist.list_page(self.executor.store, **kw)

    def result(self, run_id: str) -> tuple[RunResult, Blueprint | None]:
        handle = self.executor.attach(run_id)
        with self.executor._redis("reading the run", run_id):
            res = handle.store.load_result(run_id)
        try:
            bp: Blueprint | None = handle.blueprint
        except FlownbError:
            bp = None  # expired blueprint: the diff has no drawing, the table is complete
        return res, bp

    def widget(self, run_id: str) -> Any:
        from .frontend import _kernel_widget

        return _kernel_widget(self.executor.attach(run_id), None, self.executor.prefix,
                              self.executor.queue_name)


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "?"


def _cells(row: RunRow) -> list[str]:
    dur = row.duration_s
    cost = "" if not row.cost_usd else f"${row.cost_usd:.4f}"
    return [row.status, row.blueprint_id, _when(row.started_at),
            "…" if dur is None else f"{dur:.2f}s", "" if row.nodes is None else str(row.nodes),
            "" if not row.tokens else f"{row.tokens:,}", cost]


_HEADS = ["status", "blueprint", "started", "duration", "nodes", "tokens", "cost"]
_CELLS_WIDTH = "48em"  # the widths below plus room: one line per row, the table scrolls sideways
_WIDTHS = ["6.5em", "10em", "11em", "5.5em", "4em", "4.5em", "5em"]


def _cells_html(row: RunRow | None) -> str:
    """A row's text cells (or, for ``None``, the header) as one HTML line of fixed widths."""
    texts = _HEADS if row is None else _cells(row)
    out = []
    for name, text, width in zip(_HEADS, texts, _WIDTHS):
        body = f"<b>{text}</b>" if row is None else html.escape(text)
        out.append(f"<span class='flownb-run-{name}' style='display:inline-block;width:{width};"
                   f"overflow:hidden;text-overflow:ellipsis;white-space:nowrap;"
                   f"vertical-align:middle'>{body}</span>")
    state = "" if row is None else f" data-status='{html.escape(row.status, quote=True)}'"
    return f"<div class='flownb-run-cells' style='white-space:nowrap'{state}>{''.join(out)}</div>"


class RunsBrowser:
    """The runs table with filters, pager, a run's widget below and a two-run diff."""

    def __init__(self, source: LocalRuns | RedisRuns, *, page_size: int = 20) -> None:
        import ipywidgets as W

        if not isinstance(page_size, int) or page_size < 1:
            raise FlownbError(f"runs: page_size must be an int >= 1, got {page_size!r}")
        self.source = source
        self.page_size = page_size
        self.offset = 0
        self.selected: list[str] = []
        self.last_page: RunPage | None = None
        self.opened: Any = None
        self.diff: RunDiff | None = None
        self.status_filter = W.Dropdown(options=[_ALL], value=_ALL, description="status")
        self.blueprint_filter = W.Dropdown(options=[_ALL], value=_ALL, description="blueprint")
        for dd, cls in ((self.status_filter, "flownb-runs-status"),
                        (self.blueprint_filter, "flownb-runs-blueprint")):
            dd.add_class(cls)
            dd.observe(self._on_filter, names="value")
        self.refresh_button = self._button("Refresh", "flownb-runs-refresh", self._on_refresh)
        self.prev_button = self._button("◀ Newer", "flownb-runs-prev", self._on_prev)
        self.next_button = self._button("Older ▶", "flownb-runs-next", self._on_next)
        self.compare_button = self._button("Compare", "flownb-runs-compare", self._on_compare)
        self.compare_button.tooltip = "tick two runs of one blueprint, then compare them"
        self.pager = W.HTML()
        self.pager.add_class("flownb-runs-pager")
        self._rows: list[Any] = []
        self._row_ids: list[str] = []
        self._drawing = False
        self._head = W.HBox([W.HTML(layout=W.Layout(width="2em")),
                             W.HTML("<b>run</b>", layout=W.Layout(width="16.5em")),
                             W.HTML(_cells_html(None), layout=W.Layout(width=_CELLS_WIDTH, min_width=_CELLS_WIDTH))])
        self.table = W.VBox([], layout=W.Layout(overflow="auto"))
        self.table.add_class("flownb-runs-table")
        self.message = W.HTML()
        self.message.add_class("flownb-runs-message")
        self.detail = W.VBox([])
        self.detail.add_class("flownb-runs-detail")
        self.box = W.VBox([
            W.HBox([self.status_filter, self.blueprint_filter, self.refresh_button]),
            self.table,
            W.HBox([self.prev_button, self.pager, self.next_button, self.compare_button]),
            self.message, self.detail])
        self.box.add_class("flownb-runs")
        self.refresh()

    @staticmethod
    def _button(text: str, cls: str, fn: Any) -> Any:
        import ipywidgets as W

        b = W.Button(description=text, layout=W.Layout(width="auto"))
        b.add_class(cls)
        b.on_click(lambda _b: fn())
        return b

    # -- data --------------------------------------------------------------------------------
    def _filters(self) -> dict[str, str | None]:
        st, bp = self.status_filter.value, self.blueprint_filter.value
        return {"status": None if st == _ALL else st, "blueprint": None if bp == _ALL else bp}

    def refresh(self) -> RunPage:
        """Read the current page again (new runs, changed statuses) and redraw the table."""
        try:
            page = self.source.page(offset=self.offset, limit=self.page_size, **self._filters())
        except FlownbError as exc:
            self.message.value = f"<span style='color:#c62828'>{html.escape(str(exc))}</span>"
            raise
        if page.rows == [] and self.offset and page.total:
            self.offset = (page.pages - 1) * self.page_size  # the filter shrank the listing
            page = self.source.page(offset=self.offset, limit=self.page_size, **self._filters())
        self.last_page = page
        self._set_options(self.status_filter, page.statuses)
        self._set_options(self.blueprint_filter, page.blueprints)
        self._draw(page)
        return page

    def _set_options(self, dd: Any, values: list[str]) -> None:
        opts = [_ALL, *values]
        if dd.value not in opts:
            opts.append(dd.value)
        if list(dd.options) != opts:
            with self._quiet(dd):
                dd.options = opts

    class _quiet:
        """Change a dropdown's options without its observer re-reading the page."""

        def __init__(self, dd: Any) -> None:
            self.dd, self.value = dd, dd.value

        def __enter__(self) -> None:
            self.dd._flownb_quiet = True

        def __exit__(self, *exc: Any) -> None:
            self.dd.value = self.value
            self.dd._flownb_quiet = False

    def _row_widgets(self, i: int) -> Any:
        """Row ``i`` of the table, made once and reused on every page: turning a page sets
        values instead of building ~10 widgets per row again."""
        import ipywidgets as W

        while len(self._rows) <= i:
            k = len(self._rows)
            tick = W.Checkbox(value=False, indent=False, layout=W.Layout(width="2em"))
            tick.add_class("flownb-run-select")
            tick.observe(lambda ch, k=k: self._on_tick_row(k, ch["new"]), names="value")
            open_b = W.Button(layout=W.Layout(width="16.5em"))
            open_b.add_class("flownb-run-open")
            open_b.on_click(lambda _b, k=k: self.open(self._row_ids[k]))
            cells = W.HTML(layout=W.Layout(width=_CELLS_WIDTH, min_width=_CELLS_WIDTH))
            row = W.HBox([tick, open_b, cells], layout=W.Layout(align_items="center"))
            row.add_class("flownb-run-row")
            self._rows.append(row)
        return self._rows[i]

    def _draw(self, page: RunPage) -> None:
        self._row_ids = [r.run_id for r in page.rows]
        shown = []
        self._drawing = True
        try:
            for i, r in enumerate(page.rows):
                row = self._row_widgets(i)
                tick, open_b, cells = row.children
                tick.value = r.run_id in self.selected
                open_b.description = r.run_id
                open_b.tooltip = f"open run {r.run_id}"
                cells.value = _cells_html(r)
                shown.append(row)
        finally:
            self._drawing = False
        self.table.children = [self._head, *shown]
        self.pager.value = (f"page {page.page} of {page.pages} · {page.total:,} runs"
                            if page.total else "no runs")
        self.prev_button.disabled = page.offset == 0
        self.next_button.disabled = page.offset + page.limit >= page.total
        self.compare_button.disabled = len(self.selected) != 2

    # -- actions -----------------------------------------------------------------------------
    def _on_filter(self, change: dict[str, Any]) -> None:
        if getattr(change["owner"], "_flownb_quiet", False):
            return
        self.offset = 0
        self.refresh()

    def _on_refresh(self) -> None:
        self.refresh()

    def _on_prev(self) -> None:
        self.offset = max(0, self.offset - self.page_size)
        self.refresh()

    def _on_next(self) -> None:
        if self.last_page is None or self.offset + self.page_size < self.last_page.total:
            self.offset += self.page_size
        self.refresh()

    def _on_tick_row(self, k: int, on: bool) -> None:
        if not self._drawing and k < len(self._row_ids):
            self._on_tick(self._row_ids[k], on)

    def _on_tick(self, run_id: str, on: bool) -> None:
        if on and run_id not in self.selected:
            self.selected = [*self.selected, run_id][-2:]  # the two most recent ticks
        elif not on and run_id in self.selected:
            self.selected = [x for x in self.selected if x != run_id]
        self.compare_button.disabled = len(self.selected) != 2
        self.message.value = (f"selected: {', '.join(self.selected)}" if self.selected else "")

    def _on_compare(self) -> None:
        if len(self.selected) == 2:
            try:
                self.compare(*self.selected)
            except FlownbError:
                pass  # compare() has put the error on the page

    def open(self, run_id: str) -> Any:
        """Show ``run_id``'s RunWidget (graph, node table, timeline) below the table."""
        try:
            w = self.source.widget(run_id)
        except FlownbError as exc:
            self.message.value = f"<span style='color:#c62828'>{html.escape(str(exc))}</span>"
            raise
        if self.opened is not None and hasattr(self.opened, "close"):
            self.opened.close()
        self.opened = w
        self.diff = None
        self.message.value = f"run {html.escape(run_id)}"
        self.detail.children = [w.box]
        return w

    def compare(self, a: str, b: str) -> RunDiff:
        """Show the side-by-side diff of runs ``a`` and ``b`` below the table."""
        import ipywidgets as W

        try:
            ra, bpa = self.source.result(a)
            rb, bpb = self.source.result(b)
            d = diff_results(ra, rb, blueprint=bpb or bpa)
        except FlownbError as exc:
            self.message.value = f"<span style='color:#c62828'>{html.escape(str(exc))}</span>"
            raise
        self.diff = d
        self.message.value = f"diff of {html.escape(a)} and {html.escape(b)}:"
        self.detail.children = [W.HTML(d._repr_html_(), layout=W.Layout(width="100%"))]
        return d

    # -- display -----------------------------------------------------------------------------
    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.box)

    def __repr__(self) -> str:
        p = self.last_page
        return (f"<RunsBrowser {p.total if p else 0} runs, page {p.page if p else 1} of "
                f"{p.pages if p else 1}>")


def runs(redis: Any = None, *, prefix: str = "flownb", queue_name: str = "flownb",
         page_size: int = 20) -> RunsBrowser:
    """A :class:`RunsBrowser` over the runs in ``redis`` (a URL, settings or client), or, with
    no ``redis``, over the in-process runs of this kernel."""
    if redis is None:
        return RunsBrowser(LocalRuns(), page_size=page_size)
    from ..distributed.client import DistributedExecutor

    return RunsBrowser(RedisRuns(DistributedExecutor(redis, prefix=prefix, queue_name=queue_name)),
                       page_size=page_size)
