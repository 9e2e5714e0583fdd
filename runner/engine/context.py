"""The template context of a step, a hook or an input default."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ..masking import Masker, secret_leaves
from ..spec.inputs import PRIMITIVE_TYPES
from ..spec.model import ABSENT, InputField, Task, Workspace
from ..templating import LazyNamespace, Namespace, SecretMap, render_value, template_name
from .state import RunState, StepRun

__all__ = [
    "ConnectionValue",
    "RunContext",
    "connection_problems",
    "job_context",
    "run_masker",
    "secret_values",
    "step_summary",
    "task_state_data",
    "with_connections",
]


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


class ConnectionValue(Namespace):
    """A connection given to an input of its type: its properties (`{{ input.db.host }}`), its name as text."""

    __slots__ = ("name",)

    def __init__(self, name: str, values: Mapping[str, Any]):
        super().__init__(f"connection {name!r}", values)
        self.name = name

    def __str__(self) -> str:
        return self.name


def connection_problems(
    schema: Mapping[str, InputField], values: Mapping[str, Any], workspace: Workspace
) -> dict[str, str]:
    """{input: why} for inputs of a connection type naming no connection of that type."""
    problems: dict[str, str] = {}
    for name, field in schema.items():
        given = values.get(name)
        if field.type in PRIMITIVE_TYPES or not isinstance(given, str):
            continue
        connection = workspace.connections.get(given)
        if connection is None:
            known = [n for n, c in workspace.connections.items() if c.type in (field.type, None)]
            problems[name] = f"no connection {given!r}" + (
                f" (connections of type {field.type}: {', '.join(known)})"
                if known
                else f"; define one of type {field.type} under `connections:`"
            )
        elif connection.type not in (field.type, None):
            problems[name] = f"connection {given!r} is of type {connection.type}, not {field.type}"
    return problems


def with_connections(schema: Mapping[str, InputField], values: Mapping[str, Any], ctx: RunContext) -> Mapping[str, Any]:
    """`values` with each input of a connection type holding that connection (its type's defaults, its values
    rendered with the secrets), as Strøm gives them to templates. A name that is no connection stays a name."""
    resolved = None
    for name, field in schema.items():
        given = values.get(name)
        if field.type in PRIMITIVE_TYPES or not isinstance(given, str) or given not in ctx.workspace.connections:
            continue
        connection = ctx.workspace.connections[given]
        kind = ctx.workspace.connection_types.get(connection.type or "")
        defaults = {k: f.default for k, f in (kind.properties.items() if kind else ()) if f.default is not ABSENT}
        secrets = {"secret": ctx.secrets, "secrets": ctx.secrets}
        rendered = render_value(dict(connection.values), secrets, f"{connection.location} (connection {given!r})")
        resolved = resolved if resolved is not None else dict(values)
        resolved[name] = ConnectionValue(given, {**defaults, **rendered})
    return resolved if resolved is not None else values


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
            "input": Namespace(
                "input", with_connections(ctx.task.input, inputs if inputs is not None else state.inputs, ctx)
            ),
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
