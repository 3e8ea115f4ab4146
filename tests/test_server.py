"""Embedded redis-server and Redis settings, tested against real processes (no mocks).

Every server started here is stopped by a fixture finalizer; subprocess-based tests (orphan, atexit,
fork) kill their children and remove the temp dirs they leave.
"""

from __future__ import annotations

import gc
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from flownb.distributed.server import EmbeddedRedis, find_redis_server, shared_server
from flownb.distributed.settings import RedisSettings, check_server, mask_url
from flownb.core.errors import ExecutorError

ROOT = Path(__file__).resolve().parents[1]


def _alive(pid: int) -> bool:
    """True while ``pid`` runs; a zombie waiting for its (new) parent to reap it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):  # no procfs (macOS)
        return True


def _wait_gone(pid: int, timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _no_retry_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2)


@pytest.fixture
def make_server(request: pytest.FixtureRequest) -> Callable[..., EmbeddedRedis]:
    """Factory for EmbeddedRedis instances that are all stopped at teardown."""
    servers: list[EmbeddedRedis] = []

    def make(**kwargs: object) -> EmbeddedRedis:
        server = EmbeddedRedis(**kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server

    def cleanup() -> None:
        for server in servers:
            server.stop()

    request.addfinalizer(cleanup)
    return make


@pytest.fixture
def child_procs(request: pytest.FixtureRequest) -> list[subprocess.Popen[str]]:
    """Subprocesses to kill at teardown (whatever state the test left them in)."""
    procs: list[subprocess.Popen[str]] = []

    def cleanup() -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stdin):
                if stream is not None:
                    stream.close()

    request.addfinalizer(cleanup)
    return procs


def _spawn_python(code: str, procs: list[subprocess.Popen[str]]) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=str(ROOT),
    )
    procs.append(proc)
    return proc


def _read_line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line, f"child produced no output (exit status {proc.poll()})"
    return line


# ---------------------------------------------------------------------------------------------
# EmbeddedRedis
# ---------------------------------------------------------------------------------------------


def test_find_redis_server_returns_an_executable() -> None:
    path = find_redis_server()
    assert os.access(path, os.X_OK)


def test_find_redis_server_rejects_a_bad_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWNB_REDIS_SERVER", "/nonexistent/redis-server")
    with pytest.raises(ExecutorError, match="FLOWNB_REDIS_SERVER"):
        find_redis_server()


def test_unix_socket_start_stop(make_server: Callable[..., EmbeddedRedis]) -> None:
    server = make_server()
    assert server.start() is server
    assert server.url.startswith("unix:///") and server.url.endswith("redis.sock?db=0")
    sock_path = server.url[len("unix://"):].split("?")[0]
    assert oct(os.stat(sock_path).st_mode & 0o777) == "0o700"
    pid = server.pid
    assert pid is not None and _alive(pid)
    assert server.start().pid == pid  # idempotent

    client = _no_retry_client(server.url)
    assert client.set("k", "v") and client.get("k") == b"v"
    other = _no_retry_client(server.url_for(63))
    assert other.get("k") is None  # 64 separate databases
    client.close()
    other.close()

    tmp_dir = os.path.dirname(sock_path)
    server.stop()
    assert server.pid is None and not server.running
    assert _wait_gone(pid, 2)
    assert not os.path.exists(tmp_dir)
    server.stop()  # idempotent
    with pytest.raises(ExecutorError, match="not started"):
        _ = server.url


def test_tcp_mode_with_password(make_server: Callable[..., EmbeddedRedis]) -> None:
    with make_server(unix_socket=False, password="s3cret") as server:
        assert server.url.startswith("redis://:s3cret@127.0.0.1:")
        assert "s3cret" not in repr(server)
        client = _no_retry_client(server.url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
        # the password never appears on a command line (world-readable /proc/<pid>/cmdline)
        if sys.platform.startswith("linux"):
            assert b"s3cret" not in Path(f"/proc/{server.pid}/cmdline").read_bytes()
        anonymous = _no_retry_client(server.url.replace(":s3cret@", ""))
        with pytest.raises(ExecutorError, match="credentials"):
            check_server(anonymous)
        anonymous.close()
    assert server.pid is None


@pytest.mark.filterwarnings("ignore::flownb.distributed.client.NoWorkersWarning")  # worker booting
def test_tcp_mode_generates_a_password_and_workers_use_the_url(
    make_server: Callable[..., EmbeddedRedis], tmp_path: Path
) -> None:
    """Another local user can reach a loopback port: TCP mode never runs without a password."""
    import flownb
    from flownb.distributed.client import DistributedExecutor

    with make_server(unix_socket=False) as server:
        assert server.password and len(server.password) >= 24
        assert server.url.startswith(f"redis://:{server.password}@127.0.0.1:")
        assert server.password not in repr(server)
        anonymous = _no_retry_client(server.url.replace(f":{server.password}@", ""))
        with pytest.raises(ExecutorError, match="credentials"):
            check_server(anonymous)
        anonymous.close()
        client = _no_retry_client(server.url)
        assert client.config_get("protected-mode") == {"protected-mode": "yes"}
        client.close()
        # a real worker process connects with the URL (password included) and runs a node
        worker = subprocess.Popen(
            [sys.executable, "-m", "flownb", "worker", "--redis", server.url, "--name", "tcp-w",
             "--log-level", "WARNING"], cwd=str(ROOT), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        try:
            ex = DistributedExecutor(server.url)
            bp = flownb.Blueprint.from_dict({"id": "tcp", "nodes": [
                {"id": "s", "uses": "set", "params": {"values": {"k": 1}}}]})
            res = ex.run(bp, timeout=60)
            assert res.status == "succeeded" and res.state == {"k": 1}
        finally:
            worker.terminate()
            worker.wait(10)


def test_unix_socket_dir_is_private(make_server: Callable[..., EmbeddedRedis]) -> None:
    with make_server() as server:
        assert server.password is None
        sock = server.url.split("://", 1)[1].split("?", 1)[0]
        assert os.stat(os.path.dirname(sock)).st_mode & 0o777 == 0o700
        assert os.stat(sock).st_mode & 0o077 == 0


def test_tcp_port_in_use_reports_redis_log(make_server: Callable[..., EmbeddedRedis]) -> None:
    first = make_server(unix_socket=False).start()
    port = int(first.url.rsplit(":", 1)[1].split("/")[0])
    second = make_server(unix_socket=False, port=port)
    with pytest.raises(ExecutorError, match="Address already in use") as info:
        second.start()
    assert "redis.log" in str(info.value)
    assert second.pid is None
    # the failed start must not have shut down the server that owns the port
    assert first.running and _no_retry_client(first.url).ping()


def test_startup_failure_includes_log_tail(
    make_server: Callable[..., EmbeddedRedis], tmp_path: Path
) -> None:
    fake = tmp_path / "fake-redis-server"
    fake.write_text("#!/bin/sh\necho 'FATAL: this is not a redis server' >&2\nexit 1\n")
    fake.chmod(0o755)
    server = make_server(binary=str(fake))
    with pytest.raises(ExecutorError, match="FATAL: this is not a redis server"):
        server.start()
    assert not server.running


def test_concurrent_start_starts_one_server(make_server: Callable[..., EmbeddedRedis]) -> None:
    server = make_server()
    pids: list[int | None] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        barrier.wait()
        pids.append(server.start().pid)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(pids) == 6 and len(set(pids)) == 1 and pids[0] is not None


def test_restart_keeps_aof_data_and_retrying_client_reconnects(
    make_server: Callable[..., EmbeddedRedis],
) -> None:
    server = make_server(appendonly=True).start()
    url, old_pid = server.url, server.pid
    client = RedisSettings.from_url(url).connect()
    client.set("survivor", "yes")
    client.rpush("list", "a", "b")
    server.restart()
    assert server.url == url  # same socket, so existing clients can reconnect
    assert server.pid != old_pid and old_pid is not None and _wait_gone(old_pid, 2)
    # the pooled connection is dead; the retry policy reconnects without the caller noticing
    assert client.get("survivor") == b"yes"
    assert client.lrange("list", 0, -1) == [b"a", b"b"]
    client.close()


def test_restart_tcp_keeps_port(make_server: Callable[..., EmbeddedRedis]) -> None:
    server = make_server(unix_socket=False).start()
    url = server.url
    client = RedisSettings.from_url(url).connect(decode_responses=True)
    client.set("k", "v")
    server.restart()
    assert server.url == url
    assert client.get("k") is None  # no appendonly: a restart starts empty
    assert client.ping() is True
    client.close()


def test_restart_with_data_dir_keeps_data_across_instances(
    make_server: Callable[..., EmbeddedRedis], tmp_path: Path
) -> None:
    data = tmp_path / "data"
    with make_server(appendonly=True, data_dir=str(data)) as server:
        client = _no_retry_client(server.url)
        client.set("k", "kept")
        client.close()
    assert data.is_dir()  # a user-given data dir is never deleted
    with make_server(appendonly=True, data_dir=str(data)) as server:
        client = _no_retry_client(server.url)
        assert client.get("k") == b"kept"
        client.close()


def test_garbage_collected_server_stops() -> None:
    server = EmbeddedRedis().start()
    pid = server.pid
    assert pid is not None
    del server
    gc.collect()
    assert _wait_gone(pid, 3)


def test_orphaned_server_dies_with_its_owner(child_procs: list[subprocess.Popen[str]]) -> None:
    """SIGKILL (what Jupyter does to a kernel) runs no atexit: the watchdog must clean up."""
    proc = _spawn_python(
        """
        import sys, time
        from flownb.distributed.server import EmbeddedRedis
        server = EmbeddedRedis().start()
        print(server.pid, server.log_path, flush=True)
        time.sleep(60)
        """,
        child_procs,
    )
    pid_text, log_path = _read_line(proc).split()
    pid = int(pid_text)
    try:
        assert _alive(pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _wait_gone(pid, 5), "redis-server outlived its SIGKILLed owner"
    finally:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(os.path.dirname(log_path), ignore_errors=True)


def test_orphaned_server_dies_even_if_a_forked_child_holds_the_pipe(
    child_procs: list[subprocess.Popen[str]],
) -> None:
    """A fork (multiprocessing 'fork', RQ work-horses) inherits the watchdog pipe's write end, so
    EOF never comes; the watchdog's parent-pid poll must catch the owner's death instead."""
    proc = _spawn_python(
        """
        import os, time
        from flownb.distributed.server import EmbeddedRedis
        server = EmbeddedRedis().start()
        holder = os.fork()
        if holder == 0:
            time.sleep(60)
            os._exit(0)
        print(server.pid, holder, server.log_path, flush=True)
        time.sleep(60)
        """,
        child_procs,
    )
    pid_text, holder_text, log_path = _read_line(proc).split()
    pid, holder = int(pid_text), int(holder_text)
    try:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _alive(holder)
        assert _wait_gone(pid, 5), "redis-server outlived its owner while a fork held the pipe"
    finally:
        for leftover in (pid, holder):
            if _alive(leftover):
                os.kill(leftover, signal.SIGKILL)
        shutil.rmtree(os.path.dirname(log_path), ignore_errors=True)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_with_a_killed_watchdog(make_server: Callable[..., EmbeddedRedis]) -> None:
    server = make_server().start()
    pid = server.pid
    assert pid is not None
    stat = Path(f"/proc/{pid}/stat").read_text()
    watchdog_pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: ppid
    assert watchdog_pid != os.getpid()
    os.kill(watchdog_pid, signal.SIGKILL)
    assert _wait_gone(pid, 5)
    assert not server.running
    server.start()  # a dead server is simply started again
    assert server.running and _no_retry_client(server.url).ping()


def test_ctrl_c_to_the_process_group_spares_the_server(
    make_server: Callable[..., EmbeddedRedis],
) -> None:
    server = make_server().start()
    pid = server.pid
    assert pid is not None
    assert os.getpgid(pid) != os.getpgid(0)  # own session: a SIGINT to our group does not reach it


def test_shared_server_stops_at_interpreter_exit(child_procs: list[subprocess.Popen[str]]) -> None:
    proc = _spawn_python(
        """
        from flownb.distributed.server import shared_server
        from flownb.distributed.settings import RedisSettings
        server = shared_server()
        assert shared_server() is server
        assert RedisSettings().resolved_url() == server.url
        RedisSettings().connect().set("k", "v")
        print(server.pid, flush=True)
        """,
        child_procs,
    )
    pid = int(_read_line(proc))
    assert proc.wait(10) == 0
    assert _wait_gone(pid, 2)


def test_forked_child_exit_does_not_stop_the_parents_server(
    child_procs: list[subprocess.Popen[str]],
) -> None:
    proc = _spawn_python(
        """
        import os, sys
        from flownb.distributed.server import EmbeddedRedis
        server = EmbeddedRedis().start()
        child = os.fork()
        if child == 0:
            server.stop()  # a fork does not own the server: this only forgets it
            sys.exit(0)  # runs atexit/finalizers in the child: they must leave the server alone
        os.waitpid(child, 0)
        ok = server.running and os.path.exists(server.log_path)
        print("alive" if ok else "dead", flush=True)
        """,
        child_procs,
    )
    assert _read_line(proc) == "alive"
    assert proc.wait(10) == 0


def test_shared_server_in_this_process() -> None:
    server = shared_server()
    assert shared_server() is server and server.running


# ---------------------------------------------------------------------------------------------
# RedisSettings
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://:p4ss@redis.example.com:6380/5",
        "redis://user:p4ss@10.0.0.1/2",
        "rediss://:p4ss@secure.example.com:6380/1",
        "unix:///tmp/redis.sock?db=3",
        "unix://:p4ss@/var/run/redis.sock?db=0",
    ],
)
def test_from_url_accepts_supported_schemes(url: str) -> None:
    settings = RedisSettings.from_url(url, socket_timeout_s=3.0, key_prefix="t")
    assert settings.url == url and settings.socket_timeout_s == 3.0 and settings.key_prefix == "t"
    assert "p4ss" not in settings.masked_url and "p4ss" not in repr(settings)
    pool_kwargs = settings.connect().connection_pool.connection_kwargs
    if url.startswith("unix"):
        assert pool_kwargs["path"].endswith(".sock")
    else:
        assert pool_kwargs["host"] in url
    if "p4ss" in url:
        assert pool_kwargs["password"] == "p4ss"
        assert ":***@" in settings.masked_url


def test_defaults_and_connect_options() -> None:
    settings = RedisSettings.from_url("redis://localhost:6379/4")
    assert (settings.socket_timeout_s, settings.socket_connect_timeout_s) == (None, 5.0)
    assert settings.health_check_interval_s == 30.0 and settings.retry_on_timeout is True
    assert settings.key_prefix == "flownb" and settings.queue_name == "flownb"
    client = settings.connect(decode_responses=True)
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["db"] == 4 and kwargs["decode_responses"] is True
    assert kwargs["health_check_interval"] == 30.0 and kwargs["socket_connect_timeout"] == 5.0
    retry = kwargs["retry"]
    assert retry._retries == 5
    assert redis.ConnectionError in retry._supported_errors
    assert redis.TimeoutError in retry._supported_errors


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://:hunter2@localhost:6379/0", "scheme 'http://'"),
        ("localhost:6379", "not one of redis://, rediss://, unix://"),
        ("redis://:hunter2@localhost:notaport/0", "port"),
        ("redis://:hunter2@localhost:6379/abc", "database"),
        ("unix://?db=0", "socket path"),
    ],
)
def test_bad_urls_are_rejected_with_masked_password(url: str, needle: str) -> None:
    with pytest.raises(ExecutorError) as info:
        RedisSettings.from_url(url)
    message = str(info.value)
    assert needle in message
    assert "hunter2" not in message
    if "hunter2" in url:
        assert "***" in message


def test_mask_url_handles_odd_passwords() -> None:
    assert mask_url("redis://:a/b:c@host:1/0") == "redis://:***@host:1/0"
    assert mask_url("redis://user:pw@host/0") == "redis://user:***@host/0"
    assert mask_url("unix:///s.sock?db=0&password=pw") == "unix:///s.sock?db=0&password=***"
    assert mask_url("redis://host:6379/0") == "redis://host:6379/0"


def test_from_url_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWNB_REDIS_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    assert RedisSettings.from_url().url is None and RedisSettings.from_url().embedded
    monkeypatch.setenv("REDIS_URL", "redis://fallback:6379/0")
    assert RedisSettings.from_url().url == "redis://fallback:6379/0"
    monkeypatch.setenv("FLOWNB_REDIS_URL", "redis://preferred:6379/1")
    assert RedisSettings.from_url().url == "redis://preferred:6379/1"
    assert RedisSettings.from_url("redis://explicit/0").url == "redis://explicit/0"
    monkeypatch.setenv("FLOWNB_REDIS_URL", "ftp://:hunter2@nowhere")
    with pytest.raises(ExecutorError, match=r"ftp://:\*\*\*@nowhere"):
        RedisSettings.from_url()


def test_from_url_rejects_unknown_options() -> None:
    with pytest.raises(ExecutorError, match="socket_timeout"):
        RedisSettings.from_url("redis://localhost/0", socket_timeout=3)


# ---------------------------------------------------------------------------------------------
# check_server
# ---------------------------------------------------------------------------------------------


def test_check_server_reports_version(make_server: Callable[..., EmbeddedRedis]) -> None:
    server = make_server().start()
    client = RedisSettings.from_url(server.url).connect()
    version = check_server(client)
    assert tuple(int(p) for p in version.split(".")[:2]) >= (6, 2)
    with pytest.raises(ExecutorError, match=rf"flownb needs Redis >= 99\.0, unix://.*runs {version}"):
        check_server(client, min_version=(99, 0))
    client.close()


def test_check_server_unreachable_tcp() -> None:
    port = _free_port()
    client = RedisSettings.from_url(f"redis://127.0.0.1:{port}/0").connect()  # with retries (~3 s)
    with pytest.raises(ExecutorError) as info:
        check_server(client)
    assert str(info.value) == f"cannot reach Redis at redis://127.0.0.1:{port}/0: Connection refused"


def test_check_server_unreachable_unix(tmp_path: Path) -> None:
    path = tmp_path / "missing.sock"
    client = _no_retry_client(f"unix://{path}?db=2")
    with pytest.raises(ExecutorError) as info:
        check_server(client)
    assert str(info.value) == f"cannot reach Redis at unix://{path}?db=2: No such file or directory"
