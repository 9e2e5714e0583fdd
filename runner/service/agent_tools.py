"""What a worker gives its agent steps: the providers, workspace tasks as tools (a call starts a run of the task
and waits for it) and a count of the tokens used, per provider and model, for /metrics."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from .. import runs
from ..engine.approvals import QUESTION_TIMEOUT
from ..engine.events import Cancel
from ..engine.work import StepWork
from ..errors import StromError
from ..executors.agent import AgentExecutor
from ..runs.orchestrator import Conflict
from ..store import keys
from ..store.connection import patiently
from .step_state import PATIENCE

if TYPE_CHECKING:
    from ..executors.local import LocalExecutor
    from ..runs.service import Service
    from ..spec.model import InputField

__all__ = ["RedisConversations", "agent_executor", "inputs_json_schema"]

POLL = 0.2  # seconds between looks at a tool's run
_JSON_TYPES = {"integer": "integer", "number": "number", "boolean": "boolean"}


def agent_executor(service: Service, local: LocalExecutor | None = None) -> AgentExecutor:
    return AgentExecutor(
        service.config.agent_providers,
        tool_runner=partial(_run_tool, service),
        task_schemas=partial(_task_schema, service),
        count_tokens=partial(_count_tokens, service),
        untrusted_allowed=lambda workspace: bool(
            (ws := service.config.workspaces.get(workspace)) is not None and ws.untrusted_agents
        ),
        conversations=RedisConversations(service),
        mcp_launch=local.mcp_launch if local is not None else None,
    )


class RedisConversations:
    """Interactive steps' conversations in Redis while their questions wait (a little longer than they may)."""

    KEEP = int(QUESTION_TIMEOUT * 1.5)

    def __init__(self, service: Service):
        self.service = service

    def save(self, work: StepWork, data: dict[str, Any]) -> None:
        key = keys.agent_conversation(work.job_id, work.step)
        patiently(lambda: self.service.redis.set(key, json.dumps(data, default=str), ex=self.KEEP), PATIENCE)

    def load(self, work: StepWork) -> dict[str, Any] | None:
        raw = patiently(lambda: self.service.redis.get(keys.agent_conversation(work.job_id, work.step)), PATIENCE)
        return json.loads(raw) if raw else None


def inputs_json_schema(fields: Mapping[str, InputField]) -> dict[str, Any]:
    """A task's inputs as the JSON Schema of a tool's parameters."""
    properties: dict[str, Any] = {}
    for name, spec in fields.items():
        prop: dict[str, Any] = {} if spec.type == "json" else {"type": _JSON_TYPES.get(spec.type, "string")}
        if spec.options:
            prop["enum"] = list(spec.options)
        if spec.description or spec.label:
            prop["description"] = spec.description or spec.label
        properties[name] = {"type": "array", "items": prop} if spec.multiple else prop
    required = [name for name, spec in fields.items() if spec.required]
    return {"type": "object", "properties": properties, "required": required}


def _task_schema(service: Service, work: StepWork, task: str) -> tuple[str, dict[str, Any]] | None:
    try:
        loaded = runs.load_definitions(service, work.workspace).workspace
    except StromError:
        return None
    found = loaded.tasks.get(task)
    if found is None:
        return None
    description = found.description or f"Runs task {task!r} of workspace {work.workspace!r}; answers its output."
    return description, inputs_json_schema(found.input)


def _run_tool(
    service: Service, work: StepWork, task: str, arguments: Mapping[str, Any], call_id: str, cancel: threading.Event
) -> tuple[str, Any, str | None]:
    """Start the run a tool call asks for (once: its id is made from the call) and wait until it ends."""
    run_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-agent-tool:{work.job_id}:{work.step}:{work.attempt}:{call_id}")
    event = {"kind": "agent_tool", "run": work.job_id, "step": work.step, "call": call_id}
    try:
        runs.execute(service, work.workspace, task, arguments, source="agent", event=event, job_id=run_id.hex[:16])
    except Conflict:
        pass  # started already (this attempt asked twice)
    except StromError as exc:
        return "refused", None, str(exc)
    while not cancel.wait(POLL):
        state = service.runs.load(run_id.hex[:16])
        if state is None:
            return "deleted", None, "the tool's run is gone"
        if state.status.terminal:
            return state.status.value, state.output, state.error
    service.orchestrator.try_apply(run_id.hex[:16], Cancel("the agent step that called it was cancelled", by="strom"))
    return "cancelled", None, "cancelled"


def _count_tokens(service: Service, provider: str, model: str, tokens_in: int, tokens_out: int) -> None:
    with service.redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(keys.AGENT_TOKENS, f"{provider}\x1f{model}\x1finput", tokens_in)
        pipe.hincrby(keys.AGENT_TOKENS, f"{provider}\x1f{model}\x1foutput", tokens_out)
        pipe.execute()
