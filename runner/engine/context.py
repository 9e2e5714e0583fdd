"""The template context of a step, a hook or an input default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..masking import Masker, secret_leaves
from ..spec.model import InputField, Task, Workspace
from ..templating import LazyNamespace, Namespace, SecretMap, template_name
from .state import RunState, StepRun

__all__ = ["RunContext", "job_context", "run_masker", "secret_values", "step_summary", "task_state_data"]


class RunContext:
    """What a run needs besides its state: the definitions and the secrets (immutable per run)."""

    def __init__(
        self,
        workspace: Workspace,
        task: Task,
        secrets: Mapping[str, str] | None = None,
        job_url: str | None = None,
        untrusted_network: bool = False,
        task_state: Callable[[], Mapping[str, Any] | None] | None = None,
    ) -> None:
        self.workspace = workspace
        self.task = task
        self.untrusted_network = untrusted_network  # may an untrusted pull request's steps use the network
        self.secrets = secrets if isinstance(secrets, SecretMap) else SecretMap(secrets or {})
        self.job_url = job_url
        self._task_state = task_state  # reads the task's newest state snapshot (runner/store/task_states.py)

    def previous_state(self) -> Mapping[str, Any] | None:
        """The newest task state snapshot stored for the task, if any (read when first asked)."""
        return self._task_state() if self._task_state is not None else None


def task_state_data(state: RunState, ctx: RunContext) -> Mapping[str, Any] | None:
    """The structured task state a step of this run sees: the newest a step of the run wrote, else the newest
    its task kept; none for an untrusted pull request's run."""
    if not state.trusted:
        return None
    snapshot = state.task_state or ctx.previous_state()
    return (snapshot or {}).get("data") or None


def secret_values(schema: Mapping[str, InputField], values: Mapping[str, Any]) -> list[str]:
    """The values of inputs marked `secret: true`."""
    return [str(values[name]) for name, field in schema.items() if field.secret and values.get(name) not in (None, "")]


def run_masker(state: RunState, ctx: RunContext) -> Masker:
    """Hides the run's secrets and secret inputs."""
    return Masker(secret_leaves(ctx.secrets.values()) + secret_values(ctx.task.input, state.inputs))


def step_summary(run: StepRun) -> dict[str, Any]:
    return {"output": run.output, "status": run.status.value, "error": run.error}


def job_context(state: RunState, ctx: RunContext, inputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    steps = Namespace("steps")
    out: dict[str, Any] = {}
    for name, run in state.steps.items():
        if run.is_instance:
            continue
        summary = step_summary(run)
        steps[name] = summary
        out[template_name(name)] = summary
    out.update(
        {
            "input": Namespace("input", inputs if inputs is not None else state.inputs),
            "steps": steps,
            "secret": ctx.secrets,
            "secrets": ctx.secrets,
            "event": Namespace("event", state.event or {}),
            "git": Namespace("git", state.git or {}),
            "state": LazyNamespace("state", lambda: task_state_data(state, ctx)),
            "job": Namespace(
                "job",
                {
                    "id": state.id,
                    "url": ctx.job_url or "",
                    "task": state.task,
                    "workspace": state.workspace,
                    "attempt": state.attempt,
                    "source": state.source,
                    "trigger": state.trigger or "",
                },
            ),
        }
    )
    return out
