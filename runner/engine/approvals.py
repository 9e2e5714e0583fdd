"""Approval steps: a gate opens (the step waits) and people's decisions close it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import EngineError
from ..spec.model import Step
from .commands import AwaitApproval
from .draft import Draft
from .events import ApprovalDecision
from .hooks import hooks_for
from .render import ApprovalPlan
from .state import StepRun
from .status import StepStatus

__all__ = ["on_decision", "open_gate"]

S = StepStatus


def open_gate(d: Draft, step: Step, run: StepRun, attempt: int, plan: ApprovalPlan) -> None:
    timeout = step.action.timeout
    deadline = d.now + timeout if timeout else None
    approval = {"message": plan.message, "approvers": list(plan.approvers), "required": plan.required, "decisions": []}
    d.set(run.name, status=S.WAITING, attempt=attempt, started_at=d.now, deadline=deadline, approval=approval)
    d.mark_started()
    d.commands.append(AwaitApproval(d.old.id, run.name, plan.message, plan.approvers, plan.required, deadline))
    hooks = hooks_for(d.view(), d.ctx, "on_suspended", d.masker, {"step_name": run.name, "message": plan.message})
    if hooks:
        d.commands.append(hooks)


def on_decision(d: Draft, run: StepRun, event: ApprovalDecision) -> None:
    approval = dict(run.approval or {})
    decisions: list[dict[str, Any]] = list(approval.get("decisions", []))
    if event.approved and any(x["by"] == event.by and x["approved"] for x in decisions):
        raise EngineError(f"{event.by} has already approved step {run.name!r}")
    at = _iso(d.now)
    decisions.append({"by": event.by, "approved": event.approved, "reason": event.reason, "at": at})
    approval["decisions"] = decisions
    if not event.approved:
        _reject(d, run, event, approval, at)
        return
    approvers = [x["by"] for x in decisions if x["approved"]]
    if len(approvers) < approval.get("required", 1):
        d.set(run.name, approval=approval)
        return
    d.set(
        run.name,
        status=S.SUCCEEDED,
        approval=approval,
        finished_at=d.now,
        error=None,
        output={
            "approved": True,
            "approved_by": ", ".join(approvers),
            "approvers": approvers,
            "approved_at": at,
            "reason": event.reason,
            "message": approval.get("message"),
        },
    )


def _reject(d: Draft, run: StepRun, event: ApprovalDecision, approval: dict[str, Any], at: str) -> None:
    reason = f": {event.reason}" if event.reason else ""
    d.set(
        run.name,
        status=S.FAILED,
        approval=approval,
        finished_at=d.now,
        error=f"rejected by {event.by}{reason}",
        output={"approved": False, "rejected_by": event.by, "rejected_at": at, "reason": event.reason},
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
