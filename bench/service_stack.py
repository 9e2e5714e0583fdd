"""A private Redis plus web, scheduler and workers as separate processes, for the service benchmarks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis
import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.service.up import redis_binary  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Bench",
    "GIT_AUTHOR_EMAIL": "b@example.com",
    "GIT_COMMITTER_NAME": "Bench",
    "GIT_COMMITTER_EMAIL": "b@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(cwd: Path, *args: str) -> str:
    """The stock git client's output (stripped); its error if it fails."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def bench_repository(work: Path, pipeline: str) -> Path:
    """A repository with some files (40 modules, VERSION) and `pipeline` as .strom/ci.yaml, committed on main."""
    git(work.parent, "init", "-q", "-b", "main", str(work))
    (work / ".strom").mkdir()
    (work / ".strom" / "ci.yaml").write_text(pipeline)
    (work / "src").mkdir()
    for i in range(40):
        (work / "src" / f"module{i}.py").write_text(f"VALUE = {i}\n" * 50)
    (work / "VERSION").write_text("0\n")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "start")
    return work


def wait(condition, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            value = condition()
            if value:
                return value
        except Exception:  # noqa: BLE001 - not up yet: keep waiting
            pass
        time.sleep(0.01)
    raise RuntimeError(f"timed out waiting for {what}")


class Stack:
    def __init__(
        self,
        workspace_yaml: str,
        workers: int = 1,
        concurrency: int = 4,
        env: dict | None = None,
        appendonly: bool = False,
    ):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.root.chmod(
            0o755
        )  # as a deployment's workspace: a root worker's steps (uids of their own) read it in place
        (self.root / ".strom").mkdir()
        (self.root / ".strom" / "bench.yaml").write_text(workspace_yaml)
        port = free_port()
        self.redis_port = free_port()
        self.procs: dict[str, subprocess.Popen] = {}
        self.appendonly = appendonly
        self.redis = redis.Redis(port=self.redis_port, decode_responses=True)
        self.start_redis()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "STROM_REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "STROM_ADMIN_TOKEN": TOKEN,
            "STROM_LISTEN": f"127.0.0.1:{port}",
            "STROM_DATA_DIR": str(self.root / ".strom-data"),
            "STROM_RATE_LIMITS": '{"per_token": "off", "per_workspace": "off"}',  # benchmarks start runs by the hundred
            **(env or {}),
        }
        self.workers, self.concurrency = workers, concurrency
        self.start("web", "web")
        wait(lambda: requests.get(f"{self.url}/api/health", timeout=1).ok, 30, "web")
        self.start("scheduler", "scheduler")

    def start_redis(self) -> None:
        """Start (or start again, on the same port and data) the stack's redis-server."""
        self.procs["redis"] = subprocess.Popen(
            [
                redis_binary(),
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--dir",
                str(self.root),
                "--appendonly",
                "yes" if self.appendonly else "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait(self.redis.ping, 10, "redis")

    def stop_redis(self, sig: int = signal.SIGTERM) -> None:
        self.procs["redis"].send_signal(sig)
        self.procs["redis"].wait(15)

    def start(self, name: str, *args: str) -> None:
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "runner.cli", *args],
            cwd=self.root,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def start_workers(self) -> None:
        for i in range(self.workers):
            self.start(f"worker-{i}", "worker", "--concurrency", str(self.concurrency), "--name", f"bench-{i}")
        wait(lambda: len(self.redis.hkeys("strom:workers")) >= self.workers + 1, 20, "workers")

    def execute(self, task: str, inputs=None) -> dict:
        return requests.post(
            f"{self.url}/api/workspaces/local/tasks/{task}/execute",
            json={"input": inputs or {}},
            headers=AUTH,
            timeout=30,
        ).json()

    def run(self, run_id: str) -> dict:
        return json.loads(self.redis.get(f"strom:job:{run_id}"))

    def rss_mb(self) -> dict[str, float]:
        import psutil

        out = {}
        for name, proc in self.procs.items():
            if name == "redis":
                continue
            try:
                main = psutil.Process(proc.pid)
                family = [main] + main.children(recursive=True)
                out[name] = sum(p.memory_info().rss for p in family) / 1e6
            except psutil.Error:
                pass
        return out

    def close(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.tmp.cleanup()
