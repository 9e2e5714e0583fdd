"""`strom run`: drive the engine on this machine, with a thread pool in place of workers.

The loop owns every run's state. Step threads only execute rendered work and post events back,
so the rules are exactly the engine's, as they are in the service.
"""

from __future__ import annotations

import heapq
import itertools
import queue
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..engine import (
    AwaitApproval,
    CancelChild,
    CancelStep,
    ChildFinished,
    DispatchStep,
    RetryRun,
    RunContext,
    RunFinished,
    RunHooks,
    RunState,
    RunStatus,
    StartChild,
    StepFinished,
    StepStarted,
    StepWork,
    Tick,
    advance,
    hook_task,
    new_run,
)
from ..engine.events import ApprovalDecision, Cancel, Event, Start
from ..engine.status import StepStatus
from ..errors import EngineError, InputError
from ..executors import DockerExecutor, HttpExecutor, LocalExecutor, LocalSettings, Unavailable, execute
from ..executors.base import executor_key
from ..executors.destinations import EVERYWHERE
from ..executors.outfiles import remove_staging
from ..spec.model import Workspace
from .approvals import Approvals
from .display import Display

__all__ = ["LocalRunner", "RunOutcome"]


@dataclass
class _Run:
    state: RunState
    ctx: RunContext
    label: str  # how its steps are prefixed: "" for the top run, "child-task" for others
    kind: str = "task"  # task | child | hook


@dataclass
class RunOutcome:
    state: RunState  # the last attempt of the requested task
    runs: list[RunState] = field(default_factory=list)  # every run in the order they started
    interrupted: bool = False


class LocalRunner:
    def __init__(
        self,
        workspace: Workspace,
        workspace_path: Path,
        *,
        display: Display,
        approvals: Approvals,
        secrets: Mapping[str, str] | None = None,
        jobs: int = 4,
        local_executor: LocalExecutor | None = None,
        agent_executor=None,
        git: Mapping[str, Any] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.workspace = workspace
        self.path = Path(workspace_path)
        self.display = display
        self.approvals = approvals
        self.secrets = dict(secrets or {})
        self.git = dict(git) if git else None
        self.clock = clock
        self.pool = ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="strom-step")
        self.executors = {
            "local": local_executor or LocalExecutor(LocalSettings(own_uids=False)),
            "http": HttpExecutor(EVERYWHERE),
            "none": Unavailable(),
            "docker": DockerExecutor(),
        }
        if agent_executor is not None:  # the providers of a strom.yaml beside .strom/
            self.executors["agent"] = agent_executor
        self.inbox: queue.Queue = queue.Queue()
        self.runs: dict[str, _Run] = {}
        self.order: list[str] = []
        self.timers: list = []  # (at, seq, action): delayed dispatches and retries
        self.ticks: dict[str, float] = {}  # when each run wants its next Tick (deadlines)
        self.seq = itertools.count()
        self.cancels: dict[tuple[str, str, int], threading.Event] = {}
        self.busy = 0  # steps executing
        self.top_id: str | None = None
        self.interrupts = 0
        self.interrupted = False
        self.abandoned = False
        self.state_files: list[str] = []  # archives of task state steps wrote, used by later steps of this run

    # ----------------------------------------------------------------- public
    def run(self, task_name: str, inputs: Mapping[str, Any]) -> RunOutcome:
        """Run `task_name` to the end. Raises InputError before anything runs if inputs are wrong."""
        ctx = self._context(task_name)
        state = new_run(ctx, inputs=inputs, now=self.clock(), git=self.git, commit=(self.git or {}).get("sha"))
        self.top_id = state.id
        self._add(state, ctx, label="", kind="task")
        self.display.run_started(state, ctx.task, self.workspace)
        try:
            self._loop()
        finally:
            self.pool.shutdown(wait=not self.abandoned, cancel_futures=True)
            for path in self.state_files:
                Path(path).unlink(missing_ok=True)
        final = self.runs[self.top_id].state
        return RunOutcome(final, [self.runs[i].state for i in self.order], self.interrupted)

    def interrupt(self) -> None:
        """Ctrl-C: the first cancels every active run (hooks still run) and waits for them to settle;
        the second stops every step at once and returns without waiting."""
        self.interrupts += 1
        if self.interrupts > 1:
            self.abandoned = True
            for flag in list(self.cancels.values()):
                flag.set()

    # ----------------------------------------------------------------- loop
    def _loop(self) -> None:
        handled_interrupts = 0
        while not self._done():
            if self.interrupts > handled_interrupts:
                handled_interrupts = self.interrupts
                self._cancel_everything()
            timeout = 0.2
            upcoming = [self.timers[0][0]] if self.timers else []
            upcoming += self.ticks.values()
            if upcoming:
                timeout = max(0.0, min(timeout, min(upcoming) - self.clock()))
            try:
                item = self.inbox.get(timeout=timeout)
            except queue.Empty:
                item = None
            if item is not None:
                kind, key, payload = item
                if kind == "done":
                    self.busy -= 1
                    self.cancels.pop(key, None)
                else:
                    self._deliver(key, payload)
            self._fire_timers()

    def _done(self) -> bool:
        if self.abandoned:
            return True
        return (
            self.busy == 0
            and not self.timers
            and self.inbox.empty()
            and all(r.state.status.terminal for r in self.runs.values())
        )

    def _fire_timers(self) -> None:
        now = self.clock()
        while self.timers and self.timers[0][0] <= now:
            _, _, action = heapq.heappop(self.timers)
            action()
        for job_id, at in list(self.ticks.items()):
            if at <= now:
                del self.ticks[job_id]
                self._post(job_id, Tick())

    def _later(self, at: float, action) -> None:
        heapq.heappush(self.timers, (at, next(self.seq), action))

    def _post(self, job_id: str, event: Event) -> None:
        self.inbox.put(("event", job_id, event))

    def _release(self, key) -> None:
        """A step thread has ended."""
        self.inbox.put(("done", key, None))

    def _deliver(self, job_id: str, event: Event) -> None:
        run = self.runs[job_id]
        try:
            decision = advance(run.state, event, run.ctx, self.clock())
        except EngineError as exc:
            if not isinstance(event, (StepStarted, StepFinished, Tick, Cancel)):
                self.display.note(f"ignored: {exc}")
            return
        before = run.state
        run.state = decision.state
        self.display.changed(before, run.state, run.label, is_top=job_id == self.top_id)
        for command in decision.commands:
            self._apply(run, command)
        if decision.wake_at is None:
            self.ticks.pop(job_id, None)
        else:
            self.ticks[job_id] = decision.wake_at

    # ----------------------------------------------------------------- commands
    def _apply(self, run: _Run, command) -> None:
        if isinstance(command, DispatchStep):
            if command.not_before and command.not_before > self.clock():
                self._later(command.not_before, lambda c=command, r=run: self._dispatch(r, c.work))
            else:
                self._dispatch(run, command.work)
        elif isinstance(command, CancelStep):
            flag = self.cancels.get((command.job_id, command.step, command.attempt))
            if flag is not None:
                flag.set()
        elif isinstance(command, StartChild):
            self._start_child(run, command)
        elif isinstance(command, CancelChild):
            if command.child_job in self.runs:
                self._post(command.child_job, Cancel("parent run cancelled"))
        elif isinstance(command, AwaitApproval):
            self._ask(run, command)
        elif isinstance(command, RunHooks):
            self._hooks(run, command)
        elif isinstance(command, RunFinished):
            self._finished(run, command)
        elif isinstance(command, RetryRun):
            self._later(command.not_before, lambda r=run, c=command: self._retry(r, c))

    def _dispatch(self, run: _Run, work: StepWork) -> None:
        current = run.state.steps.get(work.step)
        if current is None or current.status is not StepStatus.QUEUED or current.attempt != work.attempt:
            return  # cancelled (or otherwise decided) while its retry delay ran
        flag = threading.Event()
        key = (work.job_id, work.step, work.attempt)
        self.cancels[key] = flag
        if run.state.cancel_requested:
            flag.set()
        executor = self._executor_for(work)
        self.busy += 1
        self.pool.submit(self._execute, run.label, executor, work, flag, key)

    def _executor_for(self, work: StepWork):
        return self.executors.get(executor_key(work), self.executors["none"])

    def _execute(self, label: str, executor, work: StepWork, flag: threading.Event, key) -> None:
        try:
            self._post(work.job_id, StepStarted(work.step, work.attempt, worker="local"))
            logs = self.display.step_logs(label, work.step)
            # task state lasts as long as this run: a later step starts from the files an earlier one wrote
            result = execute(executor, replace(work, state_archive=work.state_files or None), self.path, logs, flag)
            if result.state_files:
                self.state_files.append(result.state_files)
            if result.artifacts_dir:
                remove_staging(result.artifacts_dir)
                logs.line("strom", "artifacts are kept by the service (strom up, strom worker); strom run drops them")
            state = {"data": result.state, "files": result.state_files}
            self._post(
                work.job_id,
                StepFinished(
                    work.step,
                    work.attempt,
                    result.status,
                    result.output,
                    result.error,
                    result.exit_code,
                    result.summary,
                    state if result.state is not None or result.state_files else None,
                ),
            )
        except Exception as exc:  # noqa: BLE001 - a bug must not leave the step running forever
            self._post(
                work.job_id,
                StepFinished(
                    work.step, work.attempt, StepStatus.FAILED, error=f"internal error: {type(exc).__name__}: {exc}"
                ),
            )
        finally:
            self._release(key)

    def _context(self, task_name: str, task=None) -> RunContext:
        task = task or self.workspace.tasks[task_name]
        return RunContext(self.workspace, task, self.secrets)

    def _add(self, state: RunState, ctx: RunContext, label: str, kind: str) -> None:
        self.runs[state.id] = _Run(state, ctx, label, kind)
        self.order.append(state.id)
        self._post(state.id, Start())

    def _start_child(self, parent: _Run, command: StartChild) -> None:
        task = self.workspace.tasks.get(command.task)
        if task is None or command.workspace is not None:
            error = f"task {command.task!r} does not exist"
            if command.workspace is not None:
                error = (
                    f"an action of workspace {command.workspace!r} runs on the server (strom trigger), not in strom run"
                )
            self._post(parent.state.id, ChildFinished(command.step, command.child_job, RunStatus.FAILED, error=error))
            return
        ctx = self._context(command.task, task)
        try:
            state = new_run(
                ctx,
                inputs=command.inputs,
                now=self.clock(),
                job_id=command.child_job,
                source="child",
                depth=command.depth,
                parent_job=parent.state.id,
                parent_step=command.step,
                git=self.git,
                commit=parent.state.commit,
                from_templates=True,
            )
        except InputError as exc:
            self._post(
                parent.state.id, ChildFinished(command.step, command.child_job, RunStatus.FAILED, error=str(exc))
            )
            return
        label = f"{parent.label}{command.step} » " if parent.label else f"{command.step} » "
        self._add(state, ctx, label, kind="child")

    def _hooks(self, run: _Run, command: RunHooks) -> None:
        for call in command.calls:
            if call.error:
                self.display.note(f"{command.event} hook {call.action_ref!r} not run: {call.error}")
                continue
            task = hook_task(call, self.workspace)
            ctx = self._context(task.name, task)
            try:
                state = new_run(
                    ctx,
                    inputs=call.inputs,
                    now=self.clock(),
                    source="hook",
                    trigger=f"{run.state.task}/{command.event}",
                    git=self.git,
                    commit=run.state.commit,
                    allow_extra_inputs=True,
                )
            except InputError as exc:
                self.display.note(f"{command.event} hook {call.action_ref!r} not run: {exc}")
                continue
            self._add(state, ctx, label=f"{command.event}:{call.action_ref} » ", kind="hook")

    def _finished(self, run: _Run, command: RunFinished) -> None:
        if command.parent_job and command.parent_job in self.runs:
            if command.parent_step is None:  # the engine gives every child run the step that started it
                raise ValueError(f"child run {command.job_id} names no step of its parent")
            self._post(
                command.parent_job,
                ChildFinished(command.parent_step, command.job_id, command.status, command.output, command.error),
            )
        self.display.run_finished(run.state, run.label, run.kind)

    def _retry(self, run: _Run, command: RetryRun) -> None:
        state = new_run(
            run.ctx,
            inputs=run.state.inputs,
            now=self.clock(),
            attempt=command.attempt,
            retry_of=run.state.id,
            git=self.git,
            commit=run.state.commit,
        )
        if run.state.id == self.top_id:
            self.top_id = state.id
        self.display.note(f"retrying task {run.state.task!r} (attempt {command.attempt})")
        self._add(state, run.ctx, run.label, run.kind)

    def _ask(self, run: _Run, command: AwaitApproval) -> None:
        """Ask on a thread of its own; the waiting run keeps the loop alive, a cancel lets it end."""

        def answer(approved: bool, by: str, reason: str | None) -> None:
            self._post(command.job_id, ApprovalDecision(command.step, approved, by, reason))

        threading.Thread(target=self.approvals.ask, args=(command, answer), name="strom-approval", daemon=True).start()

    def _cancel_everything(self) -> None:
        self.interrupted = True
        for job_id, run in self.runs.items():
            if not run.state.status.terminal and not run.state.cancel_requested:
                self._post(job_id, Cancel("interrupted (Ctrl-C)"))
        self.approvals.cancel()
