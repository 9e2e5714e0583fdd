"""Approval steps: a gate opens (the step waits) and people's decisions close it. An interactive agent step's
question is such a gate too: answering it is approving it with an answer, and the step goes on with it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from ..errors import EngineError
from ..spec.model import Step
from .commands import AwaitApproval
from .draft import Draft
from .events import ApprovalDecision, StepAsked
from .hooks import hooks_for
from .render import ApprovalPlan
from .state import StepRun
from .status import StepStatus

__all__ = ["MAX_ANSWER", "MAX_QUESTION", "QUESTION_TIMEOUT", "on_asked", "on_decision", "open_gate"]

S = StepStatus
QUESTION_TIMEOUT = 86400.0  # seconds a question waits for its answer (the run's own timeout may end it sooner)
MAX_QUESTION = 4000  # characters of a question kept
MAX_ANSWER = 16000


def open_gate(d: Draft, step: Step, run: StepRun, attempt: int, plan: ApprovalPlan) -> None:
    timeout = step.action.timeout
    deadline = d.now + timeout if timeout else None
    approval = {"message": plan.message, "approvers": list(plan.approvers), "required": plan.required, "decisions": []}
    d.set(run.name, attempt=attempt, started_at=d.now)
    _wait(d, run, approval, deadline)


def on_asked(d: Draft, run: StepRun, event: StepAsked) -> None:
    """The agent step asked a question: it waits for an answer as for an approval (by anyone who may approve)."""
    question = d.mask(event.question.strip()[:MAX_QUESTION]) or "(the model asked an empty question)"
    approval = {"question": True, "message": question, "approvers": [], "required": 1, "decisions": []}
    _wait(d, run, approval, d.now + QUESTION_TIMEOUT)


def _wait(d: Draft, run: StepRun, approval: dict[str, Any], deadline: float | None) -> None:
    d.set(run.name, status=S.WAITING, deadline=deadline, approval=approval, worker=None)
    d.mark_started()
    message, approvers, required = approval["message"], tuple(approval["approvers"]), approval["required"]
    d.commands.append(AwaitApproval(d.old.id, run.name, message, approvers, required, deadline))
    hooks = hooks_for(d.view(), d.ctx, "on_suspended", d.masker, {"step_name": run.name, "message": message})
    if hooks:
        d.commands.append(hooks)


def on_decision(d: Draft, run: StepRun, event: ApprovalDecision) -> None:
    approval = dict(run.approval or {})
    decisions: list[dict[str, Any]] = list(approval.get("decisions", []))
    if event.approved and any(x["by"] == event.by and x["approved"] for x in decisions):
        raise EngineError(f"{event.by} has already approved step {run.name!r}")
    answer = (event.answer or "").strip()[:MAX_ANSWER]
    if approval.get("question") and event.approved and not answer:
        raise EngineError(f"step {run.name!r} asks a question: answer it (an empty answer is none)")
    at = _iso(d.now)
    decision = {"by": event.by, "approved": event.approved, "reason": event.reason, "at": at}
    decisions.append({**decision, "answer": answer} if approval.get("question") and event.approved else decision)
    approval["decisions"] = decisions
    if not event.approved:
        _reject(d, run, event, approval, at)
        return
    if approval.get("question"):
        _answered(d, run, approval, answer)
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


def _answered(d: Draft, run: StepRun, approval: dict[str, Any], answer: str) -> None:
    """The step's next attempt goes on from where it asked, with the answer (not counted as a try)."""
    from .attempts import start  # attempts opens gates through this module

    d.set(run.name, approval={**approval, "answer": answer}, resumed=run.resumed + 1, deadline=None)
    start(d, d.step_of(run), d.steps[run.name])  # renders the attempt with the answer (render._answer)
    by = approval["decisions"][-1]["by"]
    asked = {"question": approval["message"], "answer": answer, "by": by, "at": approval["decisions"][-1]["at"]}
    d.set(run.name, approval=None, answers=[*(d.steps[run.name].answers or ()), asked])


def _reject(d: Draft, run: StepRun, event: ApprovalDecision, approval: dict[str, Any], at: str) -> None:
    reason = f": {event.reason}" if event.reason else ""
    refused = "the question was declined" if approval.get("question") else "rejected"
    d.set(
        run.name,
        status=S.FAILED,
        approval=approval,
        finished_at=d.now,
        error=f"{refused} by {event.by}{reason}",
        output={"approved": False, "rejected_by": event.by, "rejected_at": at, "reason": event.reason},
    )


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")
