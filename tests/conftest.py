"""Shared test helpers: workspaces on disk, a pure engine simulator, and running tasks locally."""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from runner.engine import (
    ApprovalDecision,
    DispatchStep,
    RunContext,
    Start,
    StepFinished,
    StepStarted,
    StepStatus,
    advance,
    new_run,
)
from runner.executors import LocalExecutor, LocalSettings
from runner.localrun import Approvals, Display, LocalRunner
from runner.spec import load_texts, load_workspace

FIXTURES = Path(__file__).parent / "fixtures"
REQUIRE_ALL = os.environ.get("STROM_REQUIRE_ALL") == "1"


def need(tool: str) -> str:
    """The path of `tool`; skips the test when missing locally, fails it in CI (STROM_REQUIRE_ALL=1)."""
    path = shutil.which(tool)
    if path:
        return path
    if REQUIRE_ALL:
        pytest.fail(f"{tool} is required here (STROM_REQUIRE_ALL=1) but is not installed")
    pytest.skip(f"{tool} is not installed")


def write_workspace(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return root


def load(yaml_text: str, name: str = ".strom/test.yaml"):
    return load_texts({name: textwrap.dedent(yaml_text).lstrip("\n")}, file_exists=lambda p: True)


class Sim:
    """Drives the pure engine by hand: send events, read the state and the commands."""

    def __init__(self, yaml_text: str, task: str, inputs=None, secrets=None, now: float = 1000.0):
        result = load(yaml_text)
        assert result.ok, [p.format() for p in result.errors]
        self.ws = result.workspace
        self.ctx = RunContext(self.ws, self.ws.tasks[task], secrets or {})
        self.now = now
        self.state = new_run(self.ctx, inputs=inputs or {}, now=now, job_id="job1")
        self.commands = []
        self.history = []

    def send(self, event, at: float | None = None):
        if at is not None:
            self.now = at
        decision = advance(self.state, event, self.ctx, self.now)
        self.state = decision.state
        self.commands = list(decision.commands)
        self.history.extend(self.commands)
        self.wake_at = decision.wake_at
        return self.commands

    def start(self):
        return self.send(Start())

    def dispatched(self) -> list[str]:
        return [c.work.step for c in self.commands if isinstance(c, DispatchStep)]

    def work(self, step: str):
        for command in reversed(self.history):
            if isinstance(command, DispatchStep) and command.work.step == step:
                return command.work
        raise AssertionError(f"{step} was never dispatched")

    def of(self, kind):
        return [c for c in self.commands if isinstance(c, kind)]

    def finish(
        self, step: str, status=StepStatus.SUCCEEDED, output=None, error=None, exit_code=None, started: bool = True
    ):
        run = self.state.steps[step]
        if started and run.status is StepStatus.QUEUED:
            self.send(StepStarted(step, run.attempt))
        return self.send(StepFinished(step, run.attempt, status, output, error, exit_code))

    def succeed(self, step: str, output=None):
        return self.finish(step, StepStatus.SUCCEEDED, output=output, exit_code=0)

    def fail(self, step: str, error: str = "boom"):
        return self.finish(step, StepStatus.FAILED, error=error, exit_code=1)

    def approve(self, step: str, by: str = "alice", approved: bool = True, reason=None):
        return self.send(ApprovalDecision(step, approved, by, reason))

    def status(self, step: str) -> StepStatus:
        return self.state.steps[step].status

    def statuses(self) -> dict[str, str]:
        return {name: run.status.value for name, run in self.state.steps.items()}


class RecordingDisplay(Display):
    """A Display writing to memory that also keeps each step's lines."""

    def __init__(self):
        self.buffer = io.StringIO()
        super().__init__(Console(file=self.buffer, width=200, no_color=True, highlight=False), progress=False)
        self.lines: list[tuple[str, str, str]] = []

    def step_logs(self, label, step):
        display = self

        class Sink:
            def line(self, stream, text):
                display.lines.append((f"{label}{step}", stream, text))
                Display.log_line(display, display._prefix(label, step), stream, text)

        return Sink()

    def text(self) -> str:
        return self.buffer.getvalue()

    def of(self, step: str, stream: str | None = "stdout") -> list[str]:
        return [t for s, st, t in self.lines if s == step and (stream is None or st == stream)]


def run_local(
    root: Path,
    task: str,
    inputs=None,
    *,
    approve=(),
    reject=None,
    secrets=None,
    jobs: int = 4,
    sandbox: str = "auto",
    git=None,
):
    ws = load_workspace(root).raise_for_errors()
    display = RecordingDisplay()
    runner = LocalRunner(
        ws,
        root,
        display=display,
        approvals=Approvals(set(approve), reject or {}),
        secrets=secrets,
        jobs=jobs,
        git=git,
        local_executor=LocalExecutor(LocalSettings(sandbox=sandbox, kill_grace=1.0)),
    )
    outcome = runner.run(task, inputs or {})
    display.summary(outcome.state, outcome.runs)
    return outcome, display


@pytest.fixture
def workspace(tmp_path):
    def make(files: dict[str, str]) -> Path:
        return write_workspace(tmp_path / "ws", files)

    return make


@pytest.fixture(scope="session", autouse=True)
def _steps_reach_their_workspaces(tmp_path_factory):
    """Run as root, steps run as unprivileged uids: let them enter pytest's (closed) temporary directories,
    as they enter a workspace on a real server."""
    if os.geteuid() == 0:
        base = tmp_path_factory.getbasetemp()  # under pytest-xdist, a directory per worker inside the run's
        for directory in (base, *base.parents):
            if directory == Path(tempfile.gettempdir()):
                break
            directory.chmod(directory.stat().st_mode | 0o001)


@pytest.fixture(autouse=True)
def _steps_reach_tmp_path(request):
    if os.geteuid() == 0 and "tmp_path" in request.fixturenames:
        path = request.getfixturevalue("tmp_path")
        path.chmod(path.stat().st_mode | 0o001)


# ---------------------------------------------------------------------------- service fixtures


@pytest.fixture(scope="session")
def redis_server():
    from service_env import RedisServer

    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server):
    import redis as redis_lib

    redis_lib.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@pytest.fixture
def service_workspace(tmp_path):
    """A workspace folder (with .strom/) for service tests; pass file contents to fill it."""

    def make(files: dict[str, str]) -> Path:
        return write_workspace(tmp_path / "ws", files)

    return make


@pytest.fixture
def upstream(tmp_path):
    """A working repository and the bare repository a git workspace follows (standing in for a forge)."""
    from git_env import git, init_repo

    bare = tmp_path / "upstream.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(bare))
    work = init_repo(tmp_path / "work")
    git(work, "remote", "add", "origin", str(bare))
    return work, bare
