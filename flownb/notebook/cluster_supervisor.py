"""Supervision of a :class:`~flownb.notebook.LocalCluster`'s workers: slots, deaths, back-off.

Why slots: a worker position outlives its worker. A monitor thread restarts workers that die
(OOM, ``kill -9``, a segfaulting library) unless the cluster is closing; the restarted worker
keeps the slot (and its log file) but gets a new name, because the dead one's leases are void.
Workers that die right after starting are restarted with exponential back-off (0.5 s doubling
to 30 s) so a broken ``--import`` does not fork-bomb the machine, but a running cluster never
gives a slot up: a kill every 500 ms must not leave 0 workers for good. Only while the cluster
is being created does a worker that cannot start make it raise (with its log). Deaths are
recorded (and shown by the cluster's view and repr), not logged as warnings: a warning would
print into whichever cell happens to be running.

Everything needed to stop the workers lives in :class:`ClusterState`, apart from the cluster,
so ``weakref.finalize`` (also an atexit hook) can hold it without keeping the cluster alive; the
monitor holds only a weak reference to the cluster.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import shutil
import signal
import subprocess
import threading
import time
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cluster_workers import RingHandler, release_ring

if TYPE_CHECKING:
    from .cluster import LocalCluster

__all__ = ["BACKOFF_FIRST_S", "BACKOFF_MAX_S", "MAX_DEATHS_KEPT", "MAX_QUICK_DEATHS",
           "MONITOR_INTERVAL_S", "QUICK_DEATH_S", "ClusterState", "Slot", "monitor"]

log = logging.getLogger("flownb.cluster")

#: A worker that dies this soon after starting counts as a start-up crash.
QUICK_DEATH_S = 5.0
#: Consecutive start-up crashes after which a cluster being created raises (a running cluster
#: keeps retrying, with back-off).
MAX_QUICK_DEATHS = 3
#: Back-off between restarts of a slot whose worker keeps dying right after starting.
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.5, 30.0
#: Deaths remembered for the cluster's view.
MAX_DEATHS_KEPT = 50
MONITOR_INTERVAL_S = 0.5


@dataclass
class Slot:
    """One worker position: restarted workers keep the slot (and log file), get a new name."""

    index: int
    name: str
    log_path: Path | None = None
    generation: int = 0
    proc: subprocess.Popen[bytes] | None = None
    thread: threading.Thread | None = None
    worker: Any = None
    stop_event: threading.Event = field(default_factory=threading.Event)
    started_at: float = 0.0
    stopping: bool = False
    quick_deaths: int = 0
    restarts: int = 0
    gave_up: bool = False
    exit_code: int | None = None
    #: monotonic time of the next start of a dead worker (back-off), 0 when alive
    restart_at: float = 0.0
    dead: bool = False
    #: the worker's last published info (jobs done…), shown after it stopped or died
    last_info: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        if self.proc is not None:
            return self.proc.pid
        if self.thread is not None:
            return os.getpid()
        return None

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        if self.thread is not None:
            return self.thread.is_alive()
        return False




class ClusterState:
    """Everything needed to stop the workers, kept apart so ``weakref.finalize`` can hold it
    without keeping the :class:`LocalCluster` alive."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.owner_pid = os.getpid()
        self.lock = threading.RLock()
        self.slots: list[Slot] = []
        self.closing = threading.Event()
        self.closed = False
        self.monitor: threading.Thread | None = None
        self.tmp_dir: str | None = None
        self.conn: Any = None
        self.workers_key = ""
        self.ring: RingHandler | None = None
        self.starting = True  # the constructor is waiting for the first workers
        #: recorded worker deaths, newest last: dicts with at, worker, exit_code, restart_in_s
        self.deaths: collections.deque[dict[str, Any]] = collections.deque(maxlen=MAX_DEATHS_KEPT)

    def stop_slots(self, slots: list[Slot], timeout: float) -> None:
        """Warm shutdown (finish the current node), then SIGKILL the process group after
        ``timeout``; thread workers are asked to stop and joined."""
        for s in slots:
            s.stopping = True
            if s.proc is not None and s.proc.poll() is None:
                with contextlib.suppress(OSError):
                    s.proc.send_signal(signal.SIGTERM)
            if s.worker is not None:
                s.stop_event.set()
                s.worker._stop_requested = True
        deadline = time.monotonic() + timeout
        for s in slots:
            if s.proc is not None:
                try:
                    s.proc.wait(max(0.05, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(OSError):
                        os.killpg(s.proc.pid, signal.SIGKILL)
                    with contextlib.suppress(OSError):
                        s.proc.kill()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        s.proc.wait(5)
                if s.proc.stdin is not None:
                    with contextlib.suppress(OSError):
                        s.proc.stdin.close()
                s.exit_code = s.proc.returncode
            if s.thread is not None:
                s.thread.join(max(0.05, deadline - time.monotonic()))
            self.forget(s)

    def forget(self, s: Slot) -> None:
        """Drop a dead worker's info row (a SIGKILLed worker cannot remove it itself)."""
        if self.conn is None or os.getpid() != self.owner_pid:
            return
        with contextlib.suppress(Exception):
            self.conn.hdel(self.workers_key, s.name)

    def record_death(self, slot: Slot) -> None:
        """Called by the monitor for a slot whose worker died: record it, schedule a restart.

        A worker that dies right after starting is restarted after a back-off that doubles up
        to :data:`BACKOFF_MAX_S`; one that ran a while is restarted at once. While the cluster
        is being created, :data:`MAX_QUICK_DEATHS` start-up crashes make it raise instead.
        """
        code = slot.proc.returncode if slot.proc is not None else None
        slot.exit_code = code
        self.forget(slot)
        lived = time.monotonic() - slot.started_at
        slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        if slot.proc is not None and slot.proc.stdin is not None:
            with contextlib.suppress(OSError):
                slot.proc.stdin.close()
        slot.proc = None
        slot.thread = None
        slot.worker = None
        slot.dead = True
        if self.starting and slot.quick_deaths >= MAX_QUICK_DEATHS:
            slot.gave_up = True  # wait_for_workers() raises with the log
            return
        delay = 0.0
        if slot.quick_deaths:
            delay = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2 ** (slot.quick_deaths - 1))
        slot.restart_at = time.monotonic() + delay
        signame = ""
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                signame = signal.Signals(-code).name
        self.deaths.append({"at": time.time(), "worker": slot.name, "slot": slot.index,
                            "exit_code": code, "signal": signame, "lived_s": round(lived, 2),
                            "restart_in_s": delay})
        log.info("flownb LocalCluster: worker %s died (exit code %s); restart in %.1fs",
                 slot.name, code, delay)

    def close(self, timeout: float = 10.0) -> None:
        if os.getpid() != self.owner_pid:
            return  # a forked child must not stop its parent's workers
        with self.lock:
            if self.closed:
                return
            self.closing.set()
            slots = list(self.slots)
        mon = self.monitor
        if mon is not None and mon is not threading.current_thread():
            mon.join(5)
        self.stop_slots(slots, timeout)
        with self.lock:
            self.closed = True
        if self.ring is not None:
            release_ring()
            self.ring = None

    def finalize(self) -> None:
        """``weakref.finalize`` / atexit: stop everything, delete the log dir."""
        if os.getpid() != self.owner_pid:
            return
        self.close(timeout=5.0)
        if self.tmp_dir is not None:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            self.tmp_dir = None


def monitor(ref: weakref.ReferenceType[LocalCluster]) -> None:
    """Restart dead workers until the cluster closes (holds only a weak reference)."""
    while True:
        cluster = ref()
        if cluster is None:
            return
        st = cluster._state
        if st.closing.is_set():
            return
        try:
            with st.lock:
                if st.closing.is_set():
                    return
                now = time.monotonic()
                for s in st.slots:
                    if s.stopping or s.gave_up:
                        continue
                    if s.dead:
                        if now >= s.restart_at:
                            cluster._respawn(s)
                    elif not s.alive():
                        st.record_death(s)
        except Exception:
            log.exception("flownb LocalCluster monitor")
        del cluster
        if st.closing.wait(MONITOR_INTERVAL_S):
            return
