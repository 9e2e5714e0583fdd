"""The stand-in for runners this process lacks: every step fails with the reason."""

from __future__ import annotations

from ..engine.work import StepWork
from ..errors import RunnerUnavailable
from ..spec.payloads import AgentPayload, NotifyPayload
from .base import StepResult

__all__ = ["Unavailable", "missing_runner"]


def missing_runner(work: StepWork) -> str:
    if isinstance(work.payload, NotifyPayload):
        return (
            "notify steps need notification channels, and none are configured here: "
            f"channel(s) {', '.join(work.payload.channels)} are unknown"
        )
    if isinstance(work.payload, AgentPayload):
        return (
            "agent steps need an LLM provider configured on the server; "
            f"provider {work.payload.provider!r} is not configured"
        )
    what = {"docker": "a Docker engine (runner: docker)", "kubernetes": "a Kubernetes cluster (runner: pod)"}
    return (
        f"this step needs {what.get(work.ability or '', work.ability or work.kind)}, which this machine does not offer"
    )


class Unavailable:
    def run(self, work, workspace, logs, cancel) -> StepResult:
        raise RunnerUnavailable(missing_runner(work))
