"""One contender of the LLM-bound workload, in its own process (so its peak RSS is its own).

``python -m bench.llm_contenders CONTENDER AGENT N BASE_URL DEADLINE_S [WORKERS]`` runs N runs of AGENT
(``content_moderation`` or ``blog_post``) all at once against the bench's chat-completions
server and prints one JSON line: wall time, runs ok / failed / unfinished, the process's peak
RSS (``VmHWM``) and, for the cluster, the workers' peak RSS (``VmHWM``) and reaper re-queues.

Every contender sends the same prompts: they are taken from the example blueprints' own
``params.prompt`` (and flownb's condition / router suffixes), so the server takes the same
branches for all of them. A contender still running at DEADLINE_S is cancelled and reported with
the runs it finished.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import re
import resource
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from .common import server_cpu_s

MODEL = "gpt-4o-mini"
#: the LLM calls on the longest path of each agent (for the analytic floor)
CRITICAL_PATH_CALLS = {"content_moderation": 3, "blog_post": 3}


def rows_for(agent: str, n: int) -> list[dict[str, Any]]:
    if agent == "content_moderation":
        from flownb import examples

        cases = list(examples.cases("content_moderation").values())
        return [dict(cases[i % len(cases)]) for i in range(n)]
    return [{"topic": f"Running AI agents from notebooks, part {i}"} for i in range(n)]


# -- the prompts, from the blueprints ---------------------------------------------------------------

def _prompts(agent: str) -> dict[str, str]:
    from flownb import examples

    bp = examples.load(agent)
    out = {n.id: str(n.params["prompt"]) for n in bp.nodes if "prompt" in n.params}
    if agent == "content_moderation":
        redact = examples.load("moderation_redact")
        out["redact_text"] = str(next(n for n in redact.nodes if n.id == "redact_text")
                                 .params["prompt"])
    return out


def _fill(template: str, values: dict[str, Any]) -> str:
    def sub(m: re.Match[str]) -> str:
        v = values[m.group(1)]
        return v if isinstance(v, str) else json.dumps(v)

    return re.sub(r"\{\{\s*([\w.-]+)\s*\}\}", sub, template)


class Agent:
    """The two agents written by hand on ``openai.AsyncOpenAI``: the plain-asyncio floor, and
    the node bodies of the LangGraph contender."""

    def __init__(self, agent: str, base_url: str) -> None:
        import openai

        from flownb.llm.nodes import CONDITION_SUFFIX, parse_bool, router_suffix

        self.agent = agent
        self.p = _prompts(agent)
        self.cond = CONDITION_SUFFIX
        self.parse_bool = parse_bool
        self.router = router_suffix(["approve", "ban", "delete-spam", "redact"], {})
        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0,
                                         timeout=120)

    async def ask(self, prompt: str) -> str:
        r = await self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}])
        return r.choices[0].message.content or ""

    async def checks(self, text: str) -> dict[str, Any]:
        pii, hate, spam = await asyncio.gather(
            self.ask(_fill(self.p["check_pii"], {"text": text}) + self.cond),
            self.ask(_fill(self.p["check_hate"], {"text": text})),
            self.ask(_fill(self.p["check_spam"], {"text": text}) + self.cond))
        return {"pii": self.parse_bool(pii), "hate": hate, "spam": self.parse_bool(spam)}

    async def triage(self, text: str, pii: Any, hate: str, spam: Any) -> str:
        reply = await self.ask(_fill(self.p["triage"], {"text": text, "pii": pii, "hate": hate,
                                                       "spam": spam}) + self.router)
        return reply.strip()

    async def branch(self, action: str, text: str) -> str:
        if action == "redact":
            red = await self.ask(_fill(self.p["redact_text"], {"text": text}))
            return f"redacted and published: {red}"
        return f"{action}: {text}"

    async def moderation(self, text: str) -> str:
        c = await self.checks(text)
        action = await self.triage(text, c["pii"], c["hate"], c["spam"])
        return f"Moderation decision -> {await self.branch(action, text)}"

    async def blog(self, topic: str) -> str:
        outline = await self.ask(_fill(self.p["outline"], {"topic": topic}))
        draft = await self.ask(_fill(self.p["draft"], {"outline": outline}))
        titles = await self.ask(_fill(self.p["titles"], {"draft": draft}))
        return f"# Title ideas\n{titles}\n\n# Draft\n{draft}"


# -- contenders -------------------------------------------------------------------------------------

async def _gather_with_deadline(coros: list[Awaitable[Any]], deadline_s: float) -> dict[str, Any]:
    tasks = [asyncio.ensure_future(c) for c in coros]
    done, pending = await asyncio.wait(tasks, timeout=deadline_s)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    ok = sum(1 for t in done if not t.cancelled() and t.exception() is None)
    errors = [repr(t.exception()) for t in done if not t.cancelled() and t.exception()]
    return {"ok": ok, "failed": len(done) - ok, "unfinished": len(pending),
            "errors": errors[:3]}


async def plain(agent: str, rows: list[dict[str, Any]], base_url: str, deadline_s: float) -> dict[str, Any]:
    a = Agent(agent, base_url)
    fn: Callable[[str], Awaitable[str]] = a.moderation if agent == "content_moderation" else a.blog
    key = "text" if agent == "content_moderation" else "topic"
    t0, c0 = time.perf_counter(), time.process_time()
    out = await _gather_with_deadline([fn(r[key]) for r in rows], deadline_s)
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    await a.client.close()
    return out


def _langgraph_app(agent: str, a: Agent) -> Any:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    if agent == "blog_post":
        class B(TypedDict, total=False):
            topic: str
            outline: str
            draft: str
            titles: str
            final: str

        async def outline(s: B) -> B:
            return {"outline": await a.ask(_fill(a.p["outline"], {"topic": s["topic"]}))}

        async def draft(s: B) -> B:
            return {"draft": await a.ask(_fill(a.p["draft"], {"outline": s["outline"]}))}

        async def titles(s: B) -> B:
            return {"titles": await a.ask(_fill(a.p["titles"], {"draft": s["draft"]}))}

        async def final(s: B) -> B:
            return {"final": f"# Title ideas\n{s['titles']}\n\n# Draft\n{s['draft']}"}

        gb: Any = StateGraph(B)
        for name, fb in (("outline", outline), ("draft", draft), ("titles", titles),
                         ("final", final)):
            gb.add_node(name, fb)
        gb.add_edge(START, "outline")
        gb.add_edge("outline", "draft")
        gb.add_edge("draft", "titles")
        gb.add_edge("titles", "final")
        gb.add_edge("final", END)
        return gb.compile()

    class M(TypedDict, total=False):
        text: str
        pii: Any
        hate: str
        spam: Any
        action: str
        log: str
        final_log: str

    async def check_pii(s: M) -> M:
        r = await a.ask(_fill(a.p["check_pii"], {"text": s["text"]}) + a.cond)
        return {"pii": a.parse_bool(r)}

    async def check_hate(s: M) -> M:
        return {"hate": await a.ask(_fill(a.p["check_hate"], {"text": s["text"]}))}

    async def check_spam(s: M) -> M:
        r = await a.ask(_fill(a.p["check_spam"], {"text": s["text"]}) + a.cond)
        return {"spam": a.parse_bool(r)}

    async def triage(s: M) -> M:
        return {"action": await a.triage(s["text"], s["pii"], s["hate"], s["spam"])}

    def branch(action: str) -> Callable[[M], Awaitable[M]]:
        async def run(s: M) -> M:
            return {"log": await a.branch(action, s["text"])}
        return run

    async def final_log(s: M) -> M:
        return {"final_log": f"Moderation decision -> {s['log']}"}

    g: Any = StateGraph(M)
    for name, f in (("check_pii", check_pii), ("check_hate", check_hate),
                    ("check_spam", check_spam), ("triage", triage), ("final_log", final_log)):
        g.add_node(name, f)
    actions = ["approve", "ban", "delete-spam", "redact"]
    for act in actions:
        g.add_node(act, branch(act))
        g.add_edge(act, "final_log")
    for c in ("check_pii", "check_hate", "check_spam"):
        g.add_edge(START, c)
    g.add_edge(["check_pii", "check_hate", "check_spam"], "triage")  # waits for all three
    g.add_conditional_edges("triage", lambda s: s["action"], {x: x for x in actions})
    g.add_edge("final_log", END)
    return g.compile()


async def langgraph(agent: str, rows: list[dict[str, Any]], base_url: str,
                    deadline_s: float) -> dict[str, Any]:
    a = Agent(agent, base_url)
    app = _langgraph_app(agent, a)
    t0, c0 = time.perf_counter(), time.process_time()
    out = await _gather_with_deadline([app.ainvoke(dict(r)) for r in rows], deadline_s)
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = time.process_time() - c0
    await a.client.close()
    return out


def _configure_flownb_llm(base_url: str) -> None:
    os.environ.update({"FLOWNB_LLM": "openai", "OPENAI_BASE_URL": base_url,
                       "OPENAI_API_KEY": "bench", "FLOWNB_LLM_CACHE": "0",
                       "FLOWNB_LLM_MODEL": MODEL})


def _batch_out(batch: Any, finished: bool, t0: float) -> dict[str, Any]:
    wall = time.perf_counter() - t0
    snap = batch.snapshot()
    errors = [it.error_text for it in batch.failures[:3]]
    return {"ok": snap.succeeded, "failed": snap.failed,
            "unfinished": snap.total - snap.succeeded - snap.failed, "wall_s": wall,
            "finished": finished, "errors": errors, "llm_calls_seen": snap.llm_calls,
            "tokens": snap.total_tokens}


def inprocess(agent: str, rows: list[dict[str, Any]], base_url: str,
              deadline_s: float) -> dict[str, Any]:
    _configure_flownb_llm(base_url)
    import flownb
    from flownb import examples

    bp = examples.load(agent)
    t0, c0 = time.perf_counter(), time.process_time()
    batch = flownb.run_many(bp, rows, concurrency=None)
    finished = batch.wait(deadline_s)
    out = _batch_out(batch, finished, t0)
    out["cpu_s"] = time.process_time() - c0
    if not finished:
        batch.cancel()
        batch.wait(30)
    return out


def _hwm_bytes(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _requeued(cluster: Any) -> int:
    n = 0
    for s in cluster._state.slots:
        if s.log_path is None:
            continue
        try:
            text = s.log_path.read_text(errors="replace")
        except OSError:
            continue
        n += sum(int(m.group(1)) for m in re.finditer(r"re-queueing (\d+) item", text))
    return n


def _cpu_s(pids: Sequence[int | None]) -> list[float]:
    """user + system CPU seconds of each process so far (psutil; 0 for one that is gone)."""
    import psutil

    out = []
    for pid in pids:
        try:
            t = psutil.Process(pid).cpu_times() if pid else None
        except psutil.Error:
            t = None
        out.append(t.user + t.system if t else 0.0)
    return out


def cluster(agent: str, rows: list[dict[str, Any]], base_url: str,
            deadline_s: float, workers: int = 2) -> dict[str, Any]:
    _configure_flownb_llm(base_url)
    from flownb import examples
    from flownb.distributed.server import EmbeddedRedis
    from flownb.notebook import LocalCluster

    bp = examples.load(agent)
    kw: dict[str, Any] = {}
    from flownb.distributed.visits import DEFAULT_CONCURRENCY

    concurrency = int(os.environ.get("BENCH_WORKER_CONCURRENCY", str(DEFAULT_CONCURRENCY)))
    if "concurrency" in inspect.signature(LocalCluster).parameters:
        kw["concurrency"] = concurrency  # a worker that runs many visits at once (when it can)
    env = {k: os.environ[k] for k in ("FLOWNB_LLM", "OPENAI_BASE_URL", "OPENAI_API_KEY",
                                      "FLOWNB_LLM_CACHE", "FLOWNB_LLM_MODEL")}
    with EmbeddedRedis(unix_socket=True) as srv, LocalCluster(workers, redis=srv, env=env,
                                                              **kw) as c:
            rconn = c.executor.conn  # redis-server's CPU from its INFO cpu, not psutil's ticks
            pids = list(c.pids)
            cpu0, rcpu0 = _cpu_s(pids), server_cpu_s(rconn)
            t0 = time.perf_counter()
            batch = c.map(bp, rows)
            finished = batch.wait(deadline_s)
            out = _batch_out(batch, finished, t0)
            cpu1, rcpu1 = _cpu_s(pids), server_cpu_s(rconn)
            # the server's and the workers' own CPU over the batch (issue 21: Redis is the limit)
            out["redis_cpu_s"] = rcpu1 - rcpu0
            out["cpu_s"] = sum(cpu1) - sum(cpu0)
            out["workers"] = workers
            if not finished:
                batch.cancel()
                batch.wait(30)
            out["worker_rss_peak_bytes"] = max((_hwm_bytes(p) or 0) for p in pids) if pids else None
            out["requeued"] = _requeued(c)
            out["worker_concurrency"] = kw.get("concurrency", 1)
            out.update(_noop_chain(c, n=200 if len(rows) > 50 else 50))
    return out


def _noop_chain(c: Any, n: int = 200, reps: int = 3) -> dict[str, Any]:
    """A no-op chain on the same cluster: the per-hop cost must not regress (≤ 0.3 ms)."""
    import flownb

    b = flownb.Builder(f"llm-bench-chain-{n}")
    for i in range(n):
        b.node(f"n{i}", "noop")
    bp = b.chain(*[f"n{i}" for i in range(n)]).build()
    c.run(bp, {}, timeout=60)  # warm-up
    per_hop = []
    for _ in range(reps):
        t0 = time.perf_counter()
        res = c.run(bp, {}, timeout=60)
        if res.status != "succeeded":
            raise RuntimeError(f"no-op chain {res.status}: {res.error}")
        per_hop.append((time.perf_counter() - t0) / n * 1000)
    return {"noop_chain_ms_per_hop": sorted(per_hop)[len(per_hop) // 2]}


CONTENDERS: dict[str, Callable[..., Any]] = {"plain": plain, "langgraph": langgraph,
                                             "inprocess": inprocess, "cluster": cluster}


def run(name: str, agent: str, n: int, base_url: str, deadline_s: float,
        workers: int = 2) -> dict[str, Any]:
    """One contender in this process (the environment is restored afterwards)."""
    saved = dict(os.environ)
    cpu0 = time.process_time()
    try:
        rows = rows_for(agent, n)
        fn = CONTENDERS[name]
        kw: dict[str, Any] = {"workers": workers} if name == "cluster" else {}
        out: dict[str, Any] = (asyncio.run(fn(agent, rows, base_url, deadline_s))
                               if inspect.iscoroutinefunction(fn)
                               else fn(agent, rows, base_url, deadline_s, **kw))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    # this process's CPU, start-up included (cpu_s: the workload's span only; for the cluster
    # the workers' CPU)
    out["client_cpu_s"] = time.process_time() - cpu0
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across fork + exec, so a contender started by
    # a bench process that had grown (after the 300k-node lint) reported the parent's 1.4 GiB
    out["client_rss_peak_bytes"] = (_hwm_bytes(os.getpid())
                                    or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return out


def main(argv: list[str]) -> int:
    out = run(argv[0], argv[1], int(argv[2]), argv[3], float(argv[4]),
              int(argv[5]) if len(argv) > 5 else 2)
    print("RESULT " + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
