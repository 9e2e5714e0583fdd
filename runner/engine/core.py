"""The engine: one function from (run state, event, now) to (new state, commands).

Every rule of a run lives here or in the modules it calls: readiness from depends_on, `when`,
for_each, continue_on_failure, skip cascades, retries, timeouts, approvals, child runs, the run's
own status, its output and its hooks. No I/O: shells (the CLI runner, the RQ service) apply
the commands and feed back events. An illegal event raises EngineError and changes nothing.
"""
from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timezone
from typing import NamedTuple

from ..durations import format_duration
from ..errors import EngineError, InputError, TemplateError
from ..spec.model import Step
from ..templating import evaluate, render, render_value
from .commands import (AwaitApproval, CancelChild, CancelStep, Command, DispatchStep, JobFinished, RetryJob,
                       StartChild)
from .context import RunContext, run_masker
from .events import (ApprovalDecision, Cancel, ChildFinished, Event, Start, StepAbandoned, StepFinished, StepStarted,
                     Tick)
from .hooks import event_for_status, hooks_for
from .render import ApprovalPlan, ChildPlan, child_job_id, render_step, step_context
from .retry import retry_delay
from .state import JobState, StepRun, instance_name
from .status import JobStatus, StepStatus, check_job, check_step
from .truth import is_truthy

__all__ = ["Decision", "advance", "MAX_DEPTH", "MAX_FOR_EACH", "LOST_GRACE"]

MAX_DEPTH = 10
MAX_FOR_EACH = 10_000
MAX_HAND_BACKS = 5  # hand-backs not counted as tries; one more counts as a failed try
LOST_GRACE = 30.0  # after a running step's deadline, how long the engine waits for its worker's report

S = StepStatus


class Decision(NamedTuple):
    state: JobState
    commands: tuple[Command, ...]
    wake_at: float | None  # when to send Tick next (deadlines), or None


def advance(state: JobState, event: Event, ctx: RunContext, now: float) -> Decision:
    """Apply `event` to `state`. Raises EngineError (leaving `state` untouched) if it is illegal."""
    transition = _Transition(state, ctx, now)
    transition.handle(event)
    return transition.result()


class _Transition:
    def __init__(self, state: JobState, ctx: RunContext, now: float):
        if ctx.task.name != state.task and not state.task.startswith("_hook:"):
            raise EngineError(f"run {state.id} is of task {state.task!r}, not {ctx.task.name!r}")
        self.old = state
        self.ctx = ctx
        self.task = ctx.task
        self.now = now
        self.steps: dict[str, StepRun] = dict(state.steps)
        self.job: dict = {}
        self.commands: list[Command] = []
        self.masker = run_masker(state, ctx)

    # ------------------------------------------------------------------ plumbing
    def get(self, field: str):
        return self.job.get(field, getattr(self.old, field))

    def view(self) -> JobState:
        return replace(self.old, steps=self.steps, **self.job)

    def run(self, name: str) -> StepRun:
        try:
            return self.steps[name]
        except KeyError:
            raise EngineError(f"run {self.old.id} has no step {name!r}") from None

    def set(self, name: str, **changes) -> StepRun:
        run = self.steps[name]
        if "status" in changes:
            check_step(name, run.status, changes["status"])
        self.steps[name] = new = replace(run, **changes)
        return new

    def mask(self, text: str | None) -> str | None:
        return self.masker.mask(text) if text else text

    def step_of(self, run: StepRun) -> Step:
        return self.task.flow[run.step]

    # ------------------------------------------------------------------ events
    def handle(self, event: Event) -> None:
        if self.old.status.terminal:
            raise EngineError(f"run {self.old.id} has already finished ({self.old.status.value})")
        handler = getattr(self, f"on_{type(event).__name__}", None)
        if handler is None:
            raise EngineError(f"unknown event {type(event).__name__}")
        handler(event)
        self.settle()
        self.conclude()

    def on_Start(self, event: Start) -> None:
        if self.old.begun:
            raise EngineError(f"run {self.old.id} has already started")
        self.job["begun"] = True

    def on_StepStarted(self, event: StepStarted) -> None:
        run = self.run(event.step)
        if run.status is not S.QUEUED or run.attempt != event.attempt:
            raise EngineError(f"step {run.name!r} attempt {event.attempt} cannot start: it is {run.status.value} "
                              f"(attempt {run.attempt})")
        timeout = self.step_of(run).effective_timeout
        self.set(run.name, status=S.RUNNING, started_at=self.now, worker=event.worker,
                 deadline=self.now + timeout if timeout else None)
        if self.get("started_at") is None:
            self.job["started_at"] = self.now

    def on_StepFinished(self, event: StepFinished) -> None:
        run = self.run(event.step)
        if run.status not in (S.QUEUED, S.RUNNING) or run.attempt != event.attempt or run.child_job:
            raise EngineError(f"step {run.name!r} attempt {event.attempt} cannot finish: it is {run.status.value} "
                              f"(attempt {run.attempt})")
        if event.status not in (S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED):
            raise EngineError(f"a step cannot finish as {event.status.value}")
        if self.get("started_at") is None:
            self.job["started_at"] = self.now
        error = event.error
        if event.status is S.FAILED and not error:
            error = f"exit code {event.exit_code}" if event.exit_code is not None else "failed"
        self.end_attempt(run, event.status, event.output, self.mask(error), event.exit_code)

    def on_StepAbandoned(self, event: StepAbandoned) -> None:
        run = self.run(event.step)
        if run.status not in (S.QUEUED, S.RUNNING) or run.attempt != event.attempt or run.child_job:
            raise EngineError(f"step {run.name!r} attempt {event.attempt} is not in flight: it is {run.status.value} "
                              f"(attempt {run.attempt})")
        if event.handed_back:
            if self.get("cancel_requested"):
                self.end_attempt(run, S.CANCELLED, None, self.mask(event.error), None)
            elif run.handed_back < MAX_HAND_BACKS:
                self.set(run.name, handed_back=run.handed_back + 1, error=self.mask(event.error))
                self.start(self.step_of(run), self.steps[run.name])
            else:
                self.end_attempt(run, S.FAILED, None, self.mask(f"{event.error} ({MAX_HAND_BACKS} times)"), None)
        elif event.retry:
            self.end_attempt(run, S.FAILED, None, self.mask(event.error), None)
        else:
            self.set(run.name, status=S.FAILED, error=self.mask(event.error), finished_at=self.now,
                     started_at=run.started_at or self.now, deadline=None)

    def on_ChildFinished(self, event: ChildFinished) -> None:
        run = self.run(event.step)
        if run.status is not S.RUNNING or run.child_job != event.child_job:
            raise EngineError(f"step {run.name!r} is not waiting for child run {event.child_job}")
        if event.status is JobStatus.SUCCEEDED:
            self.end_attempt(run, S.SUCCEEDED, event.output, None, None)
        elif event.status is JobStatus.CANCELLED:
            self.end_attempt(run, S.CANCELLED, None, f"child run {event.child_job} was cancelled", None)
        else:
            detail = f": {event.error}" if event.error else ""
            self.end_attempt(run, S.FAILED, None, self.mask(f"child run {event.child_job} {event.status.value}{detail}"),
                             None)

    def on_ApprovalDecision(self, event: ApprovalDecision) -> None:
        run = self.run(event.step)
        if run.status is not S.WAITING:
            raise EngineError(f"step {run.name!r} is not waiting for approval (it is {run.status.value})")
        approval = dict(run.approval or {})
        decisions = list(approval.get("decisions", []))
        if any(d["by"] == event.by and d["approved"] for d in decisions) and event.approved:
            raise EngineError(f"{event.by} has already approved step {run.name!r}")
        at = _iso(self.now)
        decisions.append({"by": event.by, "approved": event.approved, "reason": event.reason, "at": at})
        approval["decisions"] = decisions
        if not event.approved:
            reason = f": {event.reason}" if event.reason else ""
            self.set(run.name, status=S.FAILED, approval=approval, finished_at=self.now,
                     error=f"rejected by {event.by}{reason}",
                     output={"approved": False, "rejected_by": event.by, "rejected_at": at, "reason": event.reason})
            return
        approvers = [d["by"] for d in decisions if d["approved"]]
        if len(approvers) < approval.get("required", 1):
            self.set(run.name, approval=approval)
            return
        self.set(run.name, status=S.SUCCEEDED, approval=approval, finished_at=self.now, error=None,
                 output={"approved": True, "approved_by": ", ".join(approvers), "approvers": approvers,
                         "approved_at": at, "reason": event.reason, "message": approval.get("message")})

    def on_Cancel(self, event: Cancel) -> None:
        if self.get("cancel_requested"):
            raise EngineError(f"run {self.old.id} is already being cancelled")
        by = f" by {event.by}" if event.by else ""
        self.job.update(cancel_requested=True, cancel_reason=f"{event.reason}{by}")
        self.cancel_all(f"{event.reason}{by}")

    def on_Tick(self, event: Tick) -> None:
        deadline = self.get("deadline")
        if deadline is not None and self.now >= deadline and not self.get("timed_out"):
            limit = format_duration(self.task.timeout) if self.task.timeout else "its limit"
            self.job.update(timed_out=True, cancel_requested=True, cancel_reason=f"run timed out after {limit}")
            self.cancel_all(f"run timed out after {limit}")
        for run in list(self.steps.values()):
            if run.deadline is None or run.status.terminal:
                continue
            if run.status is S.WAITING and self.now >= run.deadline:
                limit = format_duration(self.step_of(run).action.timeout)
                self.set(run.name, status=S.FAILED, finished_at=self.now, error=f"approval timed out after {limit}")
            elif run.status is S.RUNNING and not run.child_job and self.now >= run.deadline + LOST_GRACE:
                limit = format_duration(self.step_of(run).effective_timeout)
                self.commands.append(CancelStep(self.old.id, run.name, run.attempt))
                self.end_attempt(run, S.TIMED_OUT, None, f"step timed out after {limit} (its worker did not stop it)",
                                 None)

    # ------------------------------------------------------------------ rules
    def cancel_all(self, reason: str) -> None:
        for run in list(self.steps.values()):
            if run.status in (S.PENDING, S.WAITING):
                self.set(run.name, status=S.CANCELLED, error=reason, finished_at=self.now)
            elif run.status is S.QUEUED:
                self.set(run.name, status=S.CANCELLED, error=reason, finished_at=self.now)
                self.commands.append(CancelStep(self.old.id, run.name, run.attempt))
            elif run.status is S.RUNNING and run.child_job:
                self.commands.append(CancelChild(run.child_job))
            elif run.status is S.RUNNING and not run.is_placeholder:
                self.commands.append(CancelStep(self.old.id, run.name, run.attempt))

    def end_attempt(self, run: StepRun, status: StepStatus, output, error, exit_code) -> None:
        """Finish one attempt: succeed, fail, or queue the next attempt if the retry policy allows."""
        step = self.step_of(run)
        policy = step.effective_retry
        retryable = status in (S.FAILED, S.TIMED_OUT) and not self.get("cancel_requested")
        tries = run.attempt - run.handed_back
        if retryable and tries < policy.max_attempts:
            delay = retry_delay(policy, tries, seed=f"{self.old.id}:{run.name}")
            self.set(run.name, error=error, exit_code=exit_code, retry_at=self.now + delay)
            self.start(step, self.steps[run.name], not_before=self.now + delay if delay else None)
            return
        self.set(run.name, status=status, output=output if status is S.SUCCEEDED else None, error=error,
                 exit_code=exit_code, finished_at=self.now, retry_at=None, deadline=None,
                 started_at=run.started_at or self.now)

    def tolerated(self, run: StepRun) -> bool:
        return run.status in (S.FAILED, S.TIMED_OUT) and self.step_of(run).continue_on_failure

    def settle(self) -> None:
        if not self.get("begun"):
            return
        for name in self.task.order:
            run = self.steps[name]
            step = self.task.flow[name]
            if run.status is S.PENDING and not self.get("cancel_requested"):
                deps = [self.steps[d] for d in step.depends_on]
                if all(d.status.terminal for d in deps):
                    self.ready(step, run, deps)
            run = self.steps[name]
            if run.is_placeholder and run.status is S.RUNNING:
                self.progress_loop(step, run)

    def skip(self, run: StepRun, reason: str, blocked: bool = False) -> None:
        """Skip by choice (a false `when`, nothing to loop over) or, `blocked`, because of a failure upstream."""
        self.set(run.name, status=S.SKIPPED, skip_reason=reason, blocked=blocked, finished_at=self.now)

    def fail(self, run: StepRun, error: str) -> None:
        self.set(run.name, status=S.FAILED, error=self.mask(error), finished_at=self.now)

    def ready(self, step: Step, run: StepRun, deps: list[StepRun]) -> None:
        bad = [d for d in deps if (d.status.failed and not self.tolerated(d)) or (d.status is S.SKIPPED and d.blocked)]
        if bad and not step.continue_on_failure:
            self.skip(run, "dependency " + ", ".join(
                f"{d.name} {'was skipped after a failure' if d.status is S.SKIPPED else d.status.value}" for d in bad),
                blocked=True)
            return
        if deps and not bad and all(d.status is S.SKIPPED for d in deps):
            self.skip(run, "all dependencies were skipped")
            return
        if step.when is not None:
            where = f"{step.field_locations.get('when', step.location)} (task {self.task.name!r}, step {step.name!r}, field 'when')"
            try:
                text = render(step.when, step_context(self.view(), self.ctx, run), where)
            except TemplateError as exc:
                self.fail(run, str(exc))
                return
            if not is_truthy(text):
                self.skip(run, f"condition is false: {step.when.strip()}")
                return
        if step.for_each is not None:
            items = self.items(step, run)
            if items is None:
                return
            if not items:
                self.skip(run, "for_each gave an empty list")
                return
            self.expand(step, run, items)
            return
        self.start(step, run)

    def items(self, step: Step, run: StepRun) -> list | None:
        where = f"{step.field_locations.get('for_each', step.location)} (task {self.task.name!r}, step {step.name!r}, field 'for_each')"
        try:
            value = render_value(step.for_each, step_context(self.view(), self.ctx, run), where) \
                if isinstance(step.for_each, list) else evaluate(step.for_each, step_context(self.view(), self.ctx, run), where)
        except TemplateError as exc:
            self.fail(run, str(exc))
            return None
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        if not isinstance(value, list):
            kind = type(value).__name__
            self.fail(run, f"for_each must give a list, got {kind}: {str(value)[:80]!r}")
            return None
        if len(value) > MAX_FOR_EACH:
            self.fail(run, f"for_each gave {len(value)} items; the limit is {MAX_FOR_EACH}")
            return None
        return value

    def expand(self, step: Step, run: StepRun, items: list) -> None:
        self.set(run.name, status=S.RUNNING, items=tuple(items), started_at=self.now)
        for index, item in enumerate(items):
            name = instance_name(step.name, index)
            self.steps[name] = StepRun(name=name, step=step.name, index=index, item=item)
        self.progress_loop(step, self.steps[run.name])

    def progress_loop(self, step: Step, placeholder: StepRun) -> None:
        names = [instance_name(step.name, i) for i in range(len(placeholder.items))]
        if step.sequential:
            while True:
                runs = [self.steps[n] for n in names]
                nxt = next((r for r in runs if not r.status.terminal), None)
                if nxt is None:
                    break
                if any(r.status.failed for r in runs) and not step.continue_on_failure:
                    for r in runs:
                        if r.status is S.PENDING:
                            self.skip(r, "an earlier item failed", blocked=True)
                    continue
                if nxt.status is S.PENDING and not self.get("cancel_requested"):
                    self.start(step, nxt)
                    continue
                break
        elif not self.get("cancel_requested"):
            for n in names:
                if self.steps[n].status is S.PENDING:
                    self.start(step, self.steps[n])
        runs = [self.steps[n] for n in names]
        if all(r.status.terminal for r in runs):
            self.roll_up(placeholder, runs)

    def roll_up(self, placeholder: StepRun, runs: list[StepRun]) -> None:
        outputs = [r.output if r.status is S.SUCCEEDED else None for r in runs]
        failed = [r for r in runs if r.status in (S.FAILED, S.TIMED_OUT)]
        cancelled = [r for r in runs if r.status is S.CANCELLED]
        if failed:
            detail = "; ".join(f"[{r.index}] {r.error or r.status.value}" for r in failed[:3])
            self.set(placeholder.name, status=S.FAILED, output=outputs, finished_at=self.now,
                     error=f"{len(failed)} of {len(runs)} items failed: {detail}")
        elif cancelled:
            self.set(placeholder.name, status=S.CANCELLED, output=outputs, finished_at=self.now,
                     error=cancelled[0].error)
        else:
            self.set(placeholder.name, status=S.SUCCEEDED, output=outputs, finished_at=self.now)

    def start(self, step: Step, run: StepRun, not_before: float | None = None) -> None:
        attempt = run.attempt + 1
        try:
            plan = render_step(self.view(), self.ctx, step, run, attempt)
        except (TemplateError, InputError) as exc:
            self.set(run.name, attempt=attempt)
            self.fail(self.steps[run.name], str(exc))
            return
        if isinstance(plan, ChildPlan):
            self.start_child(step, run, attempt, plan)
        elif isinstance(plan, ApprovalPlan):
            self.await_approval(step, run, attempt, plan)
        else:
            self.set(run.name, status=S.QUEUED, attempt=attempt, queued_at=self.now, deadline=None)
            self.commands.append(DispatchStep(plan, not_before))

    def start_child(self, step: Step, run: StepRun, attempt: int, plan: ChildPlan) -> None:
        depth = self.old.depth + 1
        if depth > MAX_DEPTH:
            self.set(run.name, attempt=attempt)
            self.fail(self.steps[run.name], f"task {plan.task!r} would nest {depth} runs deep; the limit is {MAX_DEPTH}")
            return
        child = child_job_id(self.old.id, run.name, attempt)
        self.set(run.name, status=S.RUNNING, attempt=attempt, child_job=child, started_at=self.now)
        if self.get("started_at") is None:
            self.job["started_at"] = self.now
        self.commands.append(StartChild(self.old.id, run.name, child, plan.task, plan.inputs, depth))

    def await_approval(self, step: Step, run: StepRun, attempt: int, plan: ApprovalPlan) -> None:
        timeout = step.action.timeout
        deadline = self.now + timeout if timeout else None
        approval = {"message": plan.message, "approvers": list(plan.approvers), "required": plan.required,
                    "decisions": []}
        self.set(run.name, status=S.WAITING, attempt=attempt, started_at=self.now, deadline=deadline,
                 approval=approval)
        if self.get("started_at") is None:
            self.job["started_at"] = self.now
        self.commands.append(AwaitApproval(self.old.id, run.name, plan.message, plan.approvers, plan.required,
                                           deadline))
        hooks = hooks_for(self.view(), self.ctx, "on_suspended", self.masker,
                          {"step_name": run.name, "message": plan.message})
        if hooks:
            self.commands.append(hooks)

    # ------------------------------------------------------------------ the run's own status
    def conclude(self) -> None:
        top = [r for r in self.steps.values() if not r.is_instance]
        started = self.get("begun") or self.get("cancel_requested")
        if started and all(r.status.terminal for r in top):
            self.finish(top)
            return
        self.set_job_status(self.live_status())

    def live_status(self) -> JobStatus:
        work = [r for r in self.steps.values() if not r.is_placeholder]
        active = any(r.status in (S.QUEUED, S.RUNNING) for r in work)
        if any(r.status is S.WAITING for r in work) and not active:
            return JobStatus.WAITING
        if self.get("started_at") is not None:
            return JobStatus.RUNNING
        return JobStatus.QUEUED

    def set_job_status(self, status: JobStatus) -> None:
        current = self.get("status")
        if status is not current:
            check_job(self.old.id, current, status)
            self.job["status"] = status

    def finish(self, top: list[StepRun]) -> None:
        bad = [r for r in top if r.status.failed and not self.tolerated(r)]
        if self.get("timed_out"):
            status = JobStatus.TIMED_OUT
        elif self.get("cancel_requested"):
            status = JobStatus.CANCELLED
        elif bad:
            status = JobStatus.FAILED
        else:
            status = JobStatus.SUCCEEDED
        error = None
        if status is JobStatus.FAILED:
            error = "; ".join(f"step {r.name} {r.status.value}: {r.error or ''}".rstrip(": ") for r in bad[:5])
        elif status in (JobStatus.CANCELLED, JobStatus.TIMED_OUT):
            error = self.get("cancel_reason")
        self.set_job_status(status)
        self.job.update(finished_at=self.now, output=self.output(), error=self.mask(error))
        self.steps = self.ordered()
        final = self.view()
        self.commands.append(JobFinished(final.id, status, final.parent_job, final.parent_step, final.output,
                                         final.error))
        retry = self.task.retry
        if (status in (JobStatus.FAILED, JobStatus.TIMED_OUT) and retry and not final.is_hook
                and final.attempt < retry.max_attempts):
            delay = retry_delay(retry, final.attempt, seed=final.id)
            self.commands.append(RetryJob(final.id, final.attempt + 1, self.now + delay))
            return
        event = event_for_status(status)
        hooks = hooks_for(final, self.ctx, event, self.masker) if event else None
        if hooks:
            self.commands.append(hooks)

    def output(self):
        leaves = [name for name in self.task.leaves if self.steps[name].output is not None]
        if len(self.task.leaves) == 1:
            return self.steps[self.task.leaves[0]].output
        return {name: self.steps[name].output for name in leaves} or None

    def ordered(self) -> dict[str, StepRun]:
        out: dict[str, StepRun] = {}
        for name in self.task.order:
            run = self.steps[name]
            out[name] = run
            for index in range(len(run.items or ())):
                key = instance_name(name, index)
                out[key] = self.steps[key]
        return out

    def result(self) -> Decision:
        state = self.view()
        return Decision(state, tuple(self.commands), _wake_at(state))


def _wake_at(state: JobState) -> float | None:
    if state.status.terminal:
        return None
    times = []
    if state.deadline is not None and not state.timed_out:
        times.append(state.deadline)
    for run in state.steps.values():
        if run.deadline is None or run.status.terminal:
            continue
        if run.status is S.WAITING:
            times.append(run.deadline)
        elif run.status is S.RUNNING and not run.child_job:
            times.append(run.deadline + LOST_GRACE)
    return min(times) if times else None


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")
