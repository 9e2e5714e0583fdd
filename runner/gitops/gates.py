"""Approval gates: the steps of a run that wait for a person, and who may decide them. A question an agent
step asked is a gate too, answered rather than approved (its author may answer it whatever the self-approval
rule: an answer gives the model information, it lets nothing through).

The same rules hold wherever a decision comes from (a pull request comment, the API, the CLI):
the step's `approvers` (user names and `@org/team` entries) decide if it lists any; otherwise
anyone with write access to the repository (on the API: any token allowed to approve). With the
workspace's `approvals.self_approval: false` the author of the change may reject but not approve.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..engine import RunState, StepRun, StepStatus
from ..engine.events import ApprovalDecision
from .trust import Trust

if TYPE_CHECKING:
    from ..runs.service import Service
    from ..workspace_config import WorkspaceConfig

__all__ = [
    "Gate",
    "Gatekeeper",
    "author_unknown",
    "caller_refusal",
    "change_authors",
    "describe_gate",
    "waiting_gates",
]


@dataclass(frozen=True)
class Gate:
    run: RunState
    step: StepRun

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def approval(self) -> dict:
        return dict(self.step.approval or {})

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(self.approval.get("approvers") or ())

    @property
    def required(self) -> int:
        return int(self.approval.get("required") or 1)

    @property
    def question(self) -> bool:
        return bool(self.approval.get("question"))

    def approved_by(self) -> list[str]:
        return [d["by"] for d in self.approval.get("decisions", []) if d.get("approved")]


def waiting_gates(states: Iterable[RunState]) -> list[Gate]:
    return [
        Gate(state, run)
        for state in states
        for run in state.steps.values()
        if run.status is StepStatus.WAITING and run.approval is not None
    ]


def change_authors(state: RunState) -> set[str]:
    """Who wrote the change a run is about: the pull request's author and whoever pushed, tagged or
    started it (a commenter who only asked for the run is not an author)."""
    event = state.event or {}
    names = {(event.get("pr") or {}).get("author") or ""}
    if event.get("kind") != "comment":
        names.add(event.get("actor") or "")
    return {n.lower() for n in names if n}


def author_unknown(state: RunState) -> bool:
    """A pull request's run whose author the forge did not name."""
    pr = (state.event or {}).get("pr")
    return bool(pr and not pr.get("author"))


def describe_gate(gate: Gate) -> str:
    """ "needs 2 of alice, @org/release; approved by alice" style facts about a gate."""
    who = ", ".join(gate.approvers) if gate.approvers else "anyone with write access"
    parts = [f"needs {gate.required} of {who}" if gate.required > 1 or gate.approvers else f"needs {who}"]
    if gate.approved_by():
        parts.append("approved by " + ", ".join(gate.approved_by()))
    return "; ".join(parts)


class Gatekeeper:
    def __init__(self, service: Service, ws: WorkspaceConfig, trust: Trust | None = None):
        self.service = service
        self.ws = ws
        self.trust = trust or Trust(service, ws)

    def refusal(
        self, gate: Gate, user: str, approve: bool, *, association: str | None = None, role_decides: bool = False
    ) -> str | None:
        """Why `user` may not decide `gate`, or None. `role_decides`: the caller's API role already
        grants approving, so without `approvers` no repository access is asked for."""
        if approve and not self.ws.self_approval and not gate.question:
            if user.lower() in change_authors(gate.run):
                return (
                    f"{user} wrote this change and may not approve its gate `{gate.name}` "
                    "(the workspace sets approvals.self_approval: false)"
                )
            if author_unknown(gate.run):
                return (
                    f"the forge did not say who wrote this pull request, so `{gate.name}` cannot be approved "
                    "while the workspace sets approvals.self_approval: false; reject it, or push again"
                )
        if approve and user.lower() in {n.lower() for n in gate.approved_by()}:
            return f"{user} has already approved `{gate.name}`; it needs {gate.required} different people"
        if gate.approvers:
            if self.listed(user, gate.approvers):
                return None
            return f"{user} is not among the approvers of `{gate.name}` ({', '.join(gate.approvers)})"
        if role_decides or self.trust.can_write_strictly(user, association):
            return None
        return f"{user} may not decide `{gate.name}`: that needs write access to the repository"

    def listed(self, user: str, approvers: Iterable[str]) -> bool:
        wanted = user.lower()
        for entry in approvers:
            if "/" in entry:
                if self.trust.in_team(entry.lstrip("@"), user):
                    return True
            elif entry.lstrip("@").lower() == wanted:
                return True
        return False

    def decide(self, gate: Gate, user: str, approve: bool, reason: str | None, answer: str | None = None) -> RunState:
        """Record the decision (or the answer) on the run. Raises EngineError if the gate stopped waiting
        meanwhile."""
        event = ApprovalDecision(gate.name, approve, user, reason, answer)
        return self.service.orchestrator.apply(gate.run.id, event).state


def caller_refusal(service: Service, state: RunState, step: str, user: str, approve: bool) -> str | None:
    """Why a caller whose role allows approving (API, CLI, web UI) may not decide `step` of `state`.
    None also when the step does not wait: the engine then says what is wrong."""
    from ..workspace_config import WorkspaceConfig

    run = state.steps[step]
    if run.approval is None or run.status is not StepStatus.WAITING:
        return None
    ws = service.config.workspaces.get(state.workspace) or WorkspaceConfig(state.workspace)
    return Gatekeeper(service, ws).refusal(Gate(state, run), user, approve, role_decides=True)
