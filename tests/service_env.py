"""Real Redis servers, service stacks in threads or processes, and a live HTTP server for tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import redis
import requests

from runner.config import load_config
from runner.runs.service import Service
from runner.service.scheduler import Scheduler
from runner.service.supervision import Health
from runner.service.up import redis_binary
from runner.service.worker import Worker
from webhooks.app import create_app
from webhooks.context import current_service
from webhooks.serve import WebServer

TOKENS = {
    "admin": "admin-token-0123456789abcdef",
    "operator": "operator-token-0123456789ab",
    "viewer": "viewer-token-0123456789abcd",
    "approver": "approver-token-0123456789a",
}


PORTS = range(20000, 32000)  # below Linux's ephemeral ports: no socket bound to port 0 is given one of these
_next_port: list[int] = []


def _port_range() -> range:
    """This process's share of PORTS: pytest-xdist workers side by side never hand out the same port."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = len(PORTS) // count
    return range(PORTS.start + index * size, PORTS.start + (index + 1) * size)


def free_port() -> int:
    """A port nothing listens on, not handed out before by this process (until its share wraps around)."""
    share = _port_range()
    if not _next_port:
        _next_port.append(share.start + os.getpid() % len(share))
    for _ in range(len(share)):
        port = _next_port[0]
        _next_port[0] = share.start + (port + 1 - share.start) % len(share)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {share}")


def wait_for(condition, timeout: float = 10.0, interval: float = 0.02, what: str = "condition"):
    """Poll until condition() is truthy; returns its value or fails with `what`."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class RedisServer:
    """A real redis-server; `stop()` it (SIGTERM or SIGKILL) and `start()` it again on the same port and data."""

    def __init__(self, port: int | None = None, directory: Path | None = None, appendonly: bool = False):
        self.port = port or free_port()
        self.directory = directory
        self.appendonly = appendonly
        self.start()

    def start(self) -> None:
        args = [
            redis_binary(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--daemonize",
            "no",
        ]
        if self.directory:
            args += ["--dir", str(self.directory)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=self.port)
        wait_for(lambda: _ping(client), 10, what="redis-server to start")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self, sig: int = signal.SIGTERM) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(10)


def _ping(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


def config_env(redis_url: str, **extra) -> dict[str, str]:
    env = {
        "STROM_REDIS_URL": redis_url,
        "STROM_TOKENS": __import__("json").dumps(
            [{"name": role, "role": role, "token": token} for role, token in TOKENS.items()]
        ),
        "STROM_WORKERS__HEARTBEAT_INTERVAL": "0.3s",
        "STROM_WORKERS__LOST_AFTER": "2s",
        "STROM_WORKERS__UNMATCHED_TIMEOUT": "2s",
        "STROM_SCHEDULER__SWEEP_INTERVAL": "0.2s",
        "STROM_WORKERS__SANDBOX": "auto",
        "STROM_HTTP__ALLOW": '["127.0.0.0/8"]',  # the tests' own servers (a test checks the default refusal)
        # tests start runs faster than people do (tests/test_rate_limits.py checks the limits themselves)
        "STROM_RATE_LIMITS": '{"per_token": "100000/minute", "per_workspace": "100000/minute"}',
    }
    env.update(extra)
    return env


def make_config(workspace: Path, redis_url: str, **extra):
    return load_config(environ=config_env(redis_url, **extra), base_dir=workspace)


@contextmanager
def stack(
    config, workers: int = 1, concurrency: int = 4, scheduler: bool = True, worker_tags=(), abilities=("script",)
):
    """A scheduler and workers running in threads of this process."""
    service = Service(config)
    parts = []
    try:
        if scheduler:
            sched = Scheduler(service)
            sched.start()
            parts.append(sched)
        for i in range(workers):
            worker = Worker(
                Service(config), abilities=abilities, concurrency=concurrency, tags=worker_tags, name=f"test-worker-{i}"
            )
            worker.start()
            parts.append(worker)
        yield service
    finally:
        for part in parts:
            part.request_stop()
        for part in parts:
            part.wait(2)


class LiveServer:
    """The Flask app on a real port, served from a thread by the server of `strom up` (webhooks/serve.py)."""

    def __init__(self, config, service=None):
        self.app = create_app(config, service)
        settings = current_service(self.app).config
        self.server = WebServer(
            self.app, "127.0.0.1", 0, timeout=settings.web_read_timeout, connections=settings.web_connections
        )
        self.port = self.server.server_port
        self.server.start(Health("web"))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.stop()


@contextmanager
def serving(config, service=None):
    """The app on a live port for the duration of the block."""
    server = LiveServer(config, service)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def live_stack(config, **stack_options):
    """stack() and the app on a live port: (service, server)."""
    with stack(config, **stack_options) as service, serving(config, service) as server:
        yield service, server


def spawn(args: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    full_env = {**os.environ, **env}
    return subprocess.Popen(
        [sys.executable, "-m", "runner.cli", *args],
        env=full_env,
        cwd=cwd,
        stdout=open(log, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


class Procs:
    """Strom processes started with `strom ...` in a workspace, by name, logging to `logs`."""

    def __init__(self, root, redis_url, logs):
        self.root, self.logs = root, logs
        self.env = config_env(redis_url)
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *args: str, **env):
        self.procs[name] = spawn(list(args), {**self.env, **env}, self.root, self.logs / f"{name}.log")
        return self.procs[name]

    def kill(self, name: str, sig=signal.SIGKILL):
        proc = self.procs.pop(name)
        os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
        proc.wait(15)

    def stop_all(self):
        for name in list(self.procs):
            proc = self.procs.pop(name)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)

    def log(self, name):
        return (self.logs / f"{name}.log").read_text()


def remote_cli(server, *args: str, token: str = "admin") -> tuple[int, str]:
    """`strom ARGS` as a client of `server`, signed in with the role `token` names: (exit code, output)."""
    from click.testing import CliRunner

    from runner.cli import main

    env = {"STROM_URL": server.url, "STROM_TOKEN": TOKENS[token]}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.output


# The web UI as a browser uses it: a session signed in through the form, with the CSRF token of each page.
def log_in(server, token: str, browser: requests.Session | None = None, **params) -> requests.Response:
    """Post the sign-in form as a browser does: with the CSRF token of the page it was shown on."""
    browser = browser or requests.Session()
    form = browser.get(f"{server.url}/login", timeout=10).text
    return browser.post(
        f"{server.url}/login",
        params=params,
        data={"token": token, "csrf_token": csrf(form)},
        allow_redirects=False,
        timeout=10,
    )


def signed_in(server, role: str = "admin") -> requests.Session:
    browser = requests.Session()
    answer = log_in(server, TOKENS[role], browser)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/"), "signed in, to the overview"
    return browser


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
