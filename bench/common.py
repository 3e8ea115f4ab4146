"""Shared plumbing for the benchmarks: statistics, the report model, blueprints, and a cluster of
real processes (embedded Redis + worker subprocesses) that always cleans up after itself.

Every benchmark function takes a :class:`Config` and returns a :class:`Report`. A report holds
*figures* (a list of samples summarised as min/median/max), *goals* (a figure compared with a
target), free-text *notes* (what a figure means, what was seen), and *data* (anything else that
belongs in ``results.json``: profiles, command counts, per-kill timings).
"""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent


# -- configuration -------------------------------------------------------------------------------

@dataclass
class Config:
    quick: bool = False
    #: repetitions per figure (after the warm-up); --quick lowers it
    reps: int = 7
    #: ``--workers``: worker processes for the benchmarks that take a number (llm, redis_cost,
    #: dist_fanout, many_runs); None = each benchmark's own default (2)
    workers: int | None = None
    #: ``--n``: the size for the benchmarks that take one (llm: runs at once; redis_cost: the
    #: chain's length); None = each benchmark's own sizes
    n: int | None = None

    def pick(self, full: Any, quick: Any) -> Any:
        """``full`` normally, ``quick`` with --quick."""
        return quick if self.quick else full


# -- statistics ------------------------------------------------------------------------------------

def summary(samples: Sequence[float]) -> dict[str, Any]:
    vals = [float(x) for x in samples]
    if not vals:
        return {"min": None, "median": None, "max": None, "n": 0}
    return {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}


def fmt(x: float | None, digits: int = 3) -> str:
    """Compact number: 3 significant digits, no exponent for the usual ranges."""
    if x is None:
        return "-"
    if x == 0:
        return "0"
    ax = abs(x)
    if float(x).is_integer() and ax < 1e6:
        return f"{int(x):,}" if ax >= 10000 else str(int(x))
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 1:
        return f"{x:.2f}"
    if ax >= 0.01:
        return f"{x:.3f}"
    return f"{x:.2g}"


def fmt_fig(fig: dict[str, Any]) -> str:
    """``median [min–max] unit``."""
    if fig.get("median") is None:
        return "-"
    unit = fig.get("unit", "")
    if fig.get("n", 0) <= 1 or fig["min"] == fig["max"]:
        return f"{fmt(fig['median'])} {unit}".strip()
    return f"{fmt(fig['median'])} [{fmt(fig['min'])}–{fmt(fig['max'])}] {unit}".strip()


# -- report ----------------------------------------------------------------------------------------

@dataclass
class Report:
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    goals: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    status: str = "ok"

    def figure(self, key: str, samples: Sequence[float], unit: str, label: str | None = None,
               *, keep_samples: bool = True) -> dict[str, Any]:
        fig = {"label": label or key, "unit": unit, **summary(samples)}
        if keep_samples:
            fig["samples"] = [round(float(s), 6) for s in samples]
        self.figures[key] = fig
        return fig

    def value(self, key: str, value: float, unit: str, label: str | None = None) -> dict[str, Any]:
        """A single measured value (a count, a total): min = median = max."""
        return self.figure(key, [value], unit, label, keep_samples=False)

    def goal(self, label: str, key: str, op: str, target: float) -> None:
        fig = self.figures.get(key)
        val = fig.get("median") if fig else None
        ok = None
        if val is not None:
            ok = {"<=": val <= target, ">=": val >= target, "==": val == target}[op]
        self.goals.append({"label": label, "figure": key, "op": op, "target": target,
                           "value": val, "ok": ok})

    def note(self, text: str) -> None:
        self.notes.append(text)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "figures": self.figures, "goals": self.goals,
                "notes": self.notes, "data": self.data}


def paired_ratio(report: Report, key: str, num: Sequence[float], den: Sequence[float],
                 label: str) -> dict[str, Any]:
    """Ratio of interleaved samples taken side by side (sample i of each ran back to back)."""
    ratios = [a / b for a, b in zip(num, den) if b]
    return report.figure(key, ratios, "×", label)


# -- timing ----------------------------------------------------------------------------------------

def interleave(contenders: dict[str, Callable[[], float]], reps: int, warmup: int = 1,
               *, collect: bool = True) -> dict[str, list[float]]:
    """Run each contender ``warmup`` times, then ``reps`` rounds; in each round every contender
    runs once, in an order rotated every round, so slow drifts of a noisy machine hit all of them.
    A contender returns its own measurement (seconds or any unit)."""
    names = list(contenders)
    for _ in range(warmup):
        for n in names:
            contenders[n]()
    out: dict[str, list[float]] = {n: [] for n in names}
    for r in range(reps):
        order = names[r % len(names):] + names[:r % len(names)]
        for n in order:
            if collect:
                gc.collect()
            out[n].append(contenders[n]())
    return out


def wait_until(pred: Callable[[], bool], timeout: float, interval: float = 0.02,
               what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# -- blueprints ----------------------------------------------------------------------------------

def chain_bp(n: int, uses: str = "noop", bp_id: str | None = None, params: dict | None = None):
    import flownb

    b = flownb.Builder(bp_id or f"bench-chain-{n}")
    for i in range(n):
        b.node(f"n{i}", uses, params=params)
    b.chain(*[f"n{i}" for i in range(n)])
    return b.build()


def fanout_bp(n: int, uses: str = "noop", bp_id: str | None = None):
    import flownb

    b = flownb.Builder(bp_id or f"bench-fanout-{n}")
    b.node("start", "noop")
    for i in range(n):
        b.node(f"b{i}", uses)
        b.edge("start", f"b{i}")
    b.node("join", "noop", join="all")
    for i in range(n):
        b.edge(f"b{i}", "join")
    return b.build()


# -- machine ---------------------------------------------------------------------------------------

def _version(dist: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001
        return None


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def redis_server_version() -> str | None:
    try:
        from flownb.distributed.server import find_redis_server

        out = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True,
                             timeout=10).stdout
        for part in out.split():
            if part.startswith("v="):
                return part[2:]
        return out.strip() or None
    except Exception:  # noqa: BLE001
        return None


def server_cpu_s(r: Any) -> float:
    """redis-server's own CPU seconds so far (``INFO cpu`` user + system, microseconds; psutil
    counts 10 ms ticks, which read 0 for a small span of work)."""
    cpu = r.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def machine_info() -> dict[str, Any]:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    mem = None
    with contextlib.suppress(Exception):
        import psutil

        mem = psutil.virtual_memory().total
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "memory_bytes": mem,
        "loadavg_at_start": load,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "versions": {
            "flownb": _version("flownb"),
            "rq": _version("rq"),
            "redis-py": _version("redis"),
            "hiredis": _version("hiredis"),
            "redis-server": redis_server_version(),
            "langgraph": _version("langgraph"),
            "pocketflow": _version("pocketflow"),
            "psutil": _version("psutil"),
        },
    }


# -- processes -------------------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError, OSError):
        return False


class Proc:
    """A subprocess with its log file (never a pipe: a chatty worker would block on a full pipe)."""

    def __init__(self, kind: str, name: str, argv: list[str], log_dir: str,
                 env: dict[str, str] | None = None) -> None:
        self.kind = kind
        self.name = name
        self.argv = argv
        self.log_path = os.path.join(log_dir, f"{name}.log")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        # the bench package and flownb must be importable by the child from the project root
        full_env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT), *[p for p in full_env.get("PYTHONPATH", "").split(os.pathsep) if p]])
        self.p = subprocess.Popen(argv, cwd=str(ROOT), stdin=subprocess.DEVNULL, stdout=self._log,
                                  stderr=subprocess.STDOUT, env=full_env)
        self.started = time.monotonic()

    @property
    def pid(self) -> int:
        return self.p.pid

    def alive(self) -> bool:
        return self.p.poll() is None

    def log_tail(self, n: int = 2000) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                return fh.read().decode(errors="replace")[-n:]
        except OSError:
            return ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.p.send_signal(sig)

    def stop(self, timeout: float = 5.0) -> None:
        if self.p.poll() is None:
            self.kill(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill(signal.SIGKILL)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.p.wait(5)
        else:
            self.p.wait()
        with contextlib.suppress(Exception):
            self._log.close()


class Cluster:
    """An embedded Redis on a unix socket plus worker subprocesses of several kinds.

    ``with Cluster() as c: c.flownb_workers(2); c.rq_workers(2); ...`` — on exit every process is
    stopped (SIGTERM, then SIGKILL) and the server is shut down, whatever happened.
    """

    def __init__(self, *, appendonly: bool = False, name: str = "bench") -> None:
        self.appendonly = appendonly
        self.name = name
        self.srv: Any = None
        self.procs: list[Proc] = []
        self.tmp = tempfile.mkdtemp(prefix=f"flownb-{name}-")
        self._n = 0

    # lifetime
    def __enter__(self) -> Cluster:
        from flownb.distributed.server import EmbeddedRedis

        self.srv = EmbeddedRedis(unix_socket=True, appendonly=self.appendonly).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for p in self.procs:
            if p.alive():
                p.kill(signal.SIGTERM)
        deadline = time.monotonic() + 5
        for p in self.procs:
            try:
                p.p.wait(max(0.05, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill(signal.SIGKILL)
            p.stop()
        leaked = [p.pid for p in self.procs if _alive(p.pid)]
        if self.srv is not None:
            with contextlib.suppress(Exception):
                self.srv.stop()
        import shutil

        shutil.rmtree(self.tmp, ignore_errors=True)
        if leaked:
            raise RuntimeError(f"{self.name}: processes survived teardown: {leaked}")

    @property
    def url(self) -> str:
        return self.srv.url

    def redis(self, **kw: Any) -> Any:
        """A plain redis-py client. redis-py 8 defaults to socket_timeout=5 s, which breaks any
        blocking call that waits longer (BLPOP on a 1000-job RQ chain): wait forever instead."""
        import redis

        kw.setdefault("socket_timeout", None)
        return redis.Redis.from_url(self.url, **kw)

    def _next(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}-{os.getpid()}"

    # workers
    def flownb_workers(self, n: int, *, lease_ttl: float = 10.0, reap_interval: float = 1.0,
                       result_ttl: int | None = None, imports: Sequence[str] = (),
                       wait: bool = True, prefix: str = "fw") -> list[Proc]:
        """``python -m flownb worker`` (the CLI), or ``python -m bench.worker_proc`` when a setting
        the CLI does not expose (``result_ttl``) is needed."""
        started = []
        for _ in range(n):
            name = self._next(prefix)
            if result_ttl is None:
                argv = [sys.executable, "-m", "flownb", "worker", "--redis", self.url,
                        "--lease-ttl", str(lease_ttl), "--reap-interval", str(reap_interval),
                        "--name", name, "--log-level", "WARNING", "--path", str(ROOT)]
            else:
                argv = [sys.executable, "-m", "bench.worker_proc", "--redis", self.url,
                        "--lease-ttl", str(lease_ttl), "--reap-interval", str(reap_interval),
                        "--result-ttl", str(result_ttl), "--name", name]
            for m in imports:
                argv += ["--import", m]
            p = Proc("flownb", name, argv, self.tmp)
            self.procs.append(p)
            started.append(p)
        if wait:
            self.wait_rq_ready(started)
        return started

    def rq_workers(self, n: int, queue: str = "rqpeer", *, wait: bool = True) -> list[Proc]:
        """Plain RQ SimpleWorkers with the JSON serializer (the peer)."""
        started = []
        for _ in range(n):
            name = self._next("rq")
            argv = [sys.executable, "-m", "rq.cli", "worker", "-w", "rq.worker.SimpleWorker",
                    "--serializer", "rq.serializers.JSONSerializer", "--url", self.url,
                    "--name", name, "--path", str(ROOT), "--logging_level", "WARNING", queue]
            p = Proc("rq", name, argv, self.tmp)
            self.procs.append(p)
            started.append(p)
        if wait:
            self.wait_rq_ready(started)
        return started

    def raw_workers(self, n: int, *, wait: bool = True) -> list[Proc]:
        """The floor: processes handing a token to each other with BLMOVE + one EVALSHA."""
        started = []
        for _ in range(n):
            name = self._next("raw")
            argv = [sys.executable, "-m", "bench.raw_peer", self.url, name]
            p = Proc("raw", name, argv, self.tmp)
            self.procs.append(p)
            started.append(p)
        if wait:
            self.wait_rq_ready(started)
        return started

    def wait_rq_ready(self, procs: Sequence[Proc], timeout: float = 30.0) -> None:
        r = self.redis()

        def ready(p: Proc) -> bool:
            key = f"rawpeer:alive:{p.name}" if p.kind == "raw" else f"rq:worker:{p.name}"
            return bool(r.exists(key))

        wait_until(lambda: all(ready(p) for p in procs) or self._dead(procs),
                   timeout, what="workers to register")
        self._raise_dead(procs)

    def wait_all(self, timeout: float = 30.0) -> None:
        """Wait until every live process of this cluster is ready (started with wait=False)."""
        self.wait_rq_ready(list(self.procs), timeout)

    def _dead(self, procs: Sequence[Proc]) -> bool:
        return any(not p.alive() for p in procs)

    def _raise_dead(self, procs: Sequence[Proc]) -> None:
        dead = [p for p in procs if not p.alive()]
        if dead:
            raise RuntimeError(f"{dead[0].kind} worker {dead[0].name} exited early "
                               f"(rc={dead[0].p.returncode}): {dead[0].log_tail()}")

    def stop(self, procs: Sequence[Proc]) -> None:
        for p in procs:
            p.stop()


def requeued_items(procs: Sequence[Proc]) -> int:
    """Items the flownb reapers re-queued, from the workers' logs ("re-queueing N item(s)")."""
    import re

    n = 0
    for p in procs:
        if p.kind != "flownb":
            continue
        for m in re.finditer(r"re-queueing (\d+) item", p.log_tail(10**8)):
            n += int(m.group(1))
    return n


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - t0)


def pct(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(p / 100.0 * len(s) + 0.5)) - 1))
    return s[k]


def cluster_ratio_goal(runs: int) -> float:
    """Issue 21's goal for LocalCluster(2) ÷ plain asyncio at ``runs`` LLM-bound runs at once:
    ≤ 1.25× at 200, ≤ 1.15× from 500 (issue 10's was 1.5× for both)."""
    return 1.15 if runs >= 500 else 1.25
