"""The view of a :class:`~flownb.notebook.cluster.LocalCluster`: workers, what they run, deaths.

Why a live view: a snapshot table printed by a cell goes stale at once (it said a worker was
"busy, current node: slow" long after the run had finished). In a kernel the cluster displays an
ipywidgets HTML that a daemon thread refreshes every second while the cluster is open (setting a
widget's value from a thread is the supported pattern; the widget itself is created in the
displaying cell's thread); the bundle also carries a static ``text/html`` copy that says when it
was taken, for nbconvert/GitHub and front-ends without widgets. Dead workers are shown here (a
row "dead, restarting in 2.0s" and the last deaths with their signal) instead of as a warning
printed into whatever cell happens to be running.
"""

from __future__ import annotations

import html
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .panels import STATE_CSS

if TYPE_CHECKING:
    from .cluster import LocalCluster

__all__ = ["REFRESH_S", "cluster_html", "display_cluster"]

#: seconds between refreshes of a displayed cluster view
REFRESH_S = 1.0
_FG = "var(--jp-ui-font-color1, #212121)"
_FG2 = "var(--jp-ui-font-color2, #616161)"
_BORDER = "var(--jp-border-color2, #e0e0e0)"
_HEAD_BG = "var(--jp-layout-color2, #eeeeee)"
_CELL = f"padding:0.2em 0.7em;line-height:1.5em;white-space:nowrap;color:{_FG};text-align:left"
_STATE_COLOUR = {"busy": STATE_CSS["running"], "idle": STATE_CSS["succeeded"],
                 "starting": STATE_CSS["retrying"]}


def _state_colour(state: str) -> str:
    if state.startswith(("dead", "restarting", "gave up")):
        return STATE_CSS["failed"]
    return _STATE_COLOUR.get(state, _FG2)


def cluster_html(cluster: LocalCluster, *, live: bool = False) -> str:
    """The cluster as HTML: a warning line when nothing serves the queue, one row per worker,
    the last deaths; stamped with the time it was taken (``live``: "updated", else "as of")."""
    esc = html.escape
    stamp = time.strftime("%H:%M:%S")
    rows = []
    for w in cluster.workers:
        state = str(w["state"])
        current = str(w.get("current") or "")
        if ":" in current:  # "<run id>:<node>"
            run, node = current.split(":", 1)
            current = f"{node} (run {run})"
        rows.append(
            f"<tr><td style='{_CELL}'>{esc(str(w['name']))}</td>"
            f"<td style='{_CELL}'>{esc(str(w['pid'] or ''))}</td>"
            f"<td style='{_CELL};color:{_state_colour(state)};font-weight:600'>{esc(state)}</td>"
            f"<td style='{_CELL}'>{esc(current)}</td>"
            f"<td style='{_CELL};text-align:right'>{esc(str(w['jobs']))}</td>"
            f"<td style='{_CELL};text-align:right'>{esc(str(w['restarts']))}</td></tr>")
    head = "".join(f"<th style='{_CELL};background:{_HEAD_BG};font-weight:600;"
                   f"border-bottom:1px solid {_BORDER}'>{h}</th>"
                   for h in ("worker", "pid", "state", "current node", "jobs done", "restarts"))
    if cluster.closed:
        status = "closed"
    else:
        alive = cluster.n_alive
        status = f"{cluster.n_workers} {cluster.mode} worker(s)"
        if alive != cluster.n_workers:
            status += f", {alive} alive"
    problem = None if cluster.closed else cluster.serving_warning()
    banner = (f"<div style='color:{STATE_CSS['failed']};font-weight:600;margin:0.2em 0'>"
              f"⚠ {esc(problem)}</div>" if problem else "")
    deaths = cluster.deaths[-5:]
    died = ""
    if deaths:
        items = []
        for d in reversed(deaths):
            how = f"killed by {d['signal']}" if d.get("signal") else f"exit code {d['exit_code']}"
            after = f"restarted as {d['restarted_as']}" if d.get("restarted_as") else (
                f"restart in {d['restart_in_s']:.1f}s" if d.get("restart_in_s") else "restarting")
            items.append(f"<li>{time.strftime('%H:%M:%S', time.localtime(d['at']))} "
                         f"<code>{esc(str(d['worker']))}</code> died ({esc(how)}, after "
                         f"{d['lived_s']:.1f}s); {esc(after)}</li>")
        died = (f"<details{' open' if not cluster.closed else ''}><summary style='color:{_FG2}'>"
                f"worker deaths ({len(cluster.deaths)})</summary><ul style='margin:0.2em 0;"
                f"color:{_FG}'>{''.join(items)}</ul></details>")
    when = ("live, updated " if live and not cluster.closed else "as of ") + stamp
    return (
        f"<div class='flownb-cluster' style='color:{_FG}'><b>LocalCluster</b> "
        f"{esc(cluster.name)}: {esc(status)}, queue <code>{esc(cluster.queue_name)}</code>, prefix "
        f"<code>{esc(cluster.prefix)}</code>, Redis <code>{esc(cluster.masked_url)}</code> "
        f"<span style='color:{_FG2}'>({when})</span>{banner}"
        f"<table style='border-collapse:separate;border-spacing:0;margin:0.3em 0;"
        f"border:1px solid {_BORDER}'><thead><tr>{head}</tr></thead><tbody>"
        + "".join(rows) + f"</tbody></table>{died}</div>")


def display_cluster(cluster: LocalCluster) -> None:
    """Display ``cluster``: a self-refreshing widget in a kernel, static HTML elsewhere."""
    from IPython.display import HTML, display

    from .frontend import in_kernel

    static = cluster_html(cluster)
    try:
        import ipywidgets as W
    except ImportError:
        W = None
    if W is None or not in_kernel() or cluster.closed:
        display(HTML(static))
        return
    view = W.HTML(value=cluster_html(cluster, live=True))
    data = dict(view._repr_mimebundle_())  # the widget view (+ text/plain)
    data["text/html"] = static
    data["text/plain"] = repr(cluster)
    display(data, raw=True)
    threading.Thread(target=_refresh, args=(weakref.ref(cluster), view),
                     name=f"flownb-cluster-view-{cluster.name}", daemon=True).start()


def _refresh(ref: weakref.ReferenceType[LocalCluster], view: Any) -> None:
    """Refresh a displayed view until the cluster closes (one last update) or is collected."""
    while True:
        time.sleep(REFRESH_S)
        cluster = ref()
        if cluster is None:
            return
        try:
            value = cluster_html(cluster, live=True)
            if view.value != value:
                view.value = value
        except Exception:  # noqa: BLE001 - a view must never raise into the kernel
            return
        if cluster.closed:
            return
        del cluster
