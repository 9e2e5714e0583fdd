"""The executor seam: `run(work, workspace, logs, cancel) -> StepResult`.

Timeouts and cancellation are results (status timed_out / cancelled), not exceptions. An
executor raises ExecutorError only for problems it translates at its edge (a missing runner,
a failed setup), and `execute()` turns those into failed results too.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import ExecutorError
from ..masking import Masker
from ..outputs import OutputCollector
from ..spec.payloads import ScriptPayload

__all__ = [
    "INSTALLATION_LABEL",
    "MANAGED_LABEL",
    "Executor",
    "LogSink",
    "MaskedLogs",
    "StepResult",
    "execute",
    "executor_key",
    "exited_cleanly",
    "safe_cut_of",
]

MANAGED_LABEL = "strom.managed"  # on every container and pod Strom starts for a step
INSTALLATION_LABEL = "strom.installation"  # whose: the id of the service (runner.store.workers.installation_id)


class LogSink(Protocol):
    def line(self, stream: str, text: str) -> None:
        """One line of output; stream is "stdout", "stderr" or "strom" (messages from Strom itself)."""


@dataclass(frozen=True)
class StepResult:
    status: StepStatus
    output: Any = None
    error: str | None = None
    exit_code: int | None = None
    summary: str | None = None  # Markdown for people (runner/summaries.py), whatever the status
    state: dict[str, Any] | None = None  # the STATE lines merged (a succeeded step's)
    state_files: str | None = None  # a gzipped tar of what the step wrote to $STATE_OUT_DIR (a succeeded step's)
    artifacts_dir: str | None = None  # where what it wrote to $ARTIFACTS_DIR waits to be stored (under files/)


def exited_cleanly(collector: OutputCollector) -> StepResult:
    """The result of a step whose process exited 0: succeeded with its OUTPUT, or failed if that is not JSON."""
    output, problem = collector.result()
    state, state_problem = collector.state()
    if problem or state_problem:
        return StepResult(StepStatus.FAILED, error=problem or state_problem, exit_code=0)
    return StepResult(StepStatus.SUCCEEDED, output=output, exit_code=0, state=state)


class Executor(Protocol):
    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult: ...


def executor_key(work: StepWork) -> str:
    """Which executor runs `work`: local, docker, kubernetes, http, notify, agent."""
    if isinstance(work.payload, ScriptPayload):
        runner = work.payload.runner.value
        return {"pod": "kubernetes"}.get(runner, runner)
    return {"pod": "kubernetes"}.get(work.kind, work.kind)


class MaskedLogs:
    """Masks secret values before lines reach the real sink."""

    def __init__(self, sink: LogSink, masker: Masker):
        self.sink = sink
        self.masker = masker

    def line(self, stream: str, text: str) -> None:
        self.sink.line(stream, self.masker.mask(text))

    def safe_cut(self, buffer: bytes, cut: int) -> int:
        return self.masker.safe_cut(buffer, cut)


def safe_cut_of(logs: LogSink):
    """The function that keeps long lines from being cut inside a secret, when `logs` masks them."""
    return getattr(logs, "safe_cut", None)


def execute(executor: Executor, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
    """Run `work` with secrets masked in its logs, errors and output (before anything is stored, or passed to
    later steps); executor errors become failed results."""
    masker = Masker(work.mask)
    masked = MaskedLogs(logs, masker)
    try:
        result = executor.run(work, workspace, masked, cancel)
    except ExecutorError as exc:
        message = masker.mask(str(exc))
        masked.line("strom", message)
        return StepResult(StepStatus.FAILED, error=message)
    if masker:
        result = replace(
            result,
            output=masker.mask_value(result.output),
            error=masker.mask(result.error) if result.error else result.error,
            summary=masker.mask(result.summary) if result.summary else result.summary,
            state=masker.mask_value(result.state) if result.state is not None else None,
        )
    return result
