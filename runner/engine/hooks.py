"""Hooks: which ones fire for a finished (or suspended) run, with what input."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..masking import Masker
from ..outputs import artifact_path
from ..templating import Namespace, render_value
from .commands import HookCall, RunHooks
from .context import RunContext, job_context
from .state import RunState
from .status import RunStatus, StepStatus

__all__ = ["event_for_status", "hook_context", "hooks_for"]


def event_for_status(status: RunStatus) -> str | None:
    return {
        RunStatus.SUCCEEDED: "on_success",
        RunStatus.FAILED: "on_error",
        RunStatus.TIMED_OUT: "on_error",
        RunStatus.CANCELLED: "on_cancel",
    }.get(status)


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts is not None else None


def hook_context(
    state: RunState, ctx: RunContext, masker: Masker, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    failed = []
    for name, run in state.steps.items():
        if run.is_instance or run.status not in (StepStatus.FAILED, StepStatus.TIMED_OUT):
            continue
        step = ctx.task.flow.get(run.step)
        failed.append(
            {
                "step_name": name,
                "action_name": (step.action_ref or step.action.name) if step else None,
                "error_message": masker.mask(run.error or ""),
                "continue_on_failure": bool(step and step.continue_on_failure),
            }
        )
    started = state.started_at or state.created_at
    duration = (state.finished_at - started) if state.finished_at is not None else None
    hook = {
        "workspace": state.workspace,
        "task_name": state.task,
        "job_id": state.id,
        "status": state.status.value,
        "is_success": state.status is RunStatus.SUCCEEDED,
        "error_message": masker.mask(state.error) if state.error else None,
        "source_type": state.source,
        "source_id": state.trigger,
        "started_at": _iso(started),
        "completed_at": _iso(state.finished_at),
        "duration_secs": round(duration, 3) if duration is not None else None,
        "failed_steps": failed,
        "url": ctx.job_url or "",
        "artifacts": _artifacts(state, ctx.job_url or ""),
    }
    hook.update(extra or {})
    context = job_context(state, ctx)
    context["hook"] = Namespace("hook", hook)
    return context


def _artifacts(state: RunState, job_url: str) -> list[dict[str, Any]]:
    """What the run's steps kept in $ARTIFACTS_DIR, as Strøm's `hook.artifacts` lists it (with a full URL)."""
    base = job_url[: -len(f"/runs/{state.id}")] if job_url.endswith(f"/runs/{state.id}") else ""
    out = []
    for name, run in state.steps.items():
        for artifact in run.artifacts or ():
            out.append(
                {
                    "name": artifact.get("name"),
                    "content_type": artifact.get("content_type"),
                    "size_bytes": artifact.get("size"),
                    "step_name": name,
                    "created_at": _iso(run.finished_at),
                    "url": base + artifact_path(state.id, name, str(artifact.get("name"))),
                }
            )
    return out


def hooks_for(
    state: RunState, ctx: RunContext, event: str, masker: Masker, extra: dict[str, Any] | None = None
) -> RunHooks | None:
    """The hooks to run for `event`: the task's own, else the workspace defaults for top-level runs."""
    if state.is_hook:
        return None
    hooks = ctx.task.hooks.for_event(event)
    if not hooks and state.depth == 0 and state.parent_job is None:
        hooks = ctx.workspace.hooks.for_event(event)
    if not hooks:
        return None
    context = hook_context(state, ctx, masker, extra)
    calls = []
    for i, hook in enumerate(hooks):
        where = f"{hook.location} ({event}[{i}] of task {state.task!r})"
        try:
            inputs = {k: render_value(v, context, f"{where}, input.{k}") for k, v in hook.input.items()}
        except Exception as exc:  # noqa: BLE001 - a hook whose inputs cannot be rendered runs as a failed call
            calls.append(HookCall(hook.action_ref, hook.action, {}, error=masker.mask(str(exc))))
            continue
        calls.append(HookCall(hook.action_ref, hook.action, inputs))
    return RunHooks(job_id=state.id, event=event, calls=tuple(calls), context=context["hook"])
