"""Messages on the events list: engine events for a run, and requests to create runs."""
from __future__ import annotations

import json
from typing import Any

from ..engine.codec import event_from_dict, event_to_dict
from ..engine.events import Event

__all__ = ["event_message", "create_child_message", "hooks_message", "encode", "decode", "EVENT", "CREATE_CHILD",
           "HOOKS", "RETRY", "DISPATCH",
           "INTAKE", "RUN_FINISHED"]

EVENT, CREATE_CHILD, HOOKS, RETRY, DISPATCH = "event", "create_child", "hooks", "retry", "dispatch"
INTAKE, RUN_FINISHED = "intake", "run_finished"


def event_message(job_id: str, event: Event) -> dict[str, Any]:
    return {"kind": EVENT, "job": job_id, "event": event_to_dict(event)}


def create_child_message(command) -> dict[str, Any]:
    return {"kind": CREATE_CHILD, "job": command.job_id, "step": command.step, "child": command.child_job,
            "task": command.task, "inputs": dict(command.inputs), "depth": command.depth}


def hooks_message(command) -> dict[str, Any]:
    calls = [{"action": c.action_ref, "inputs": dict(c.inputs), "error": c.error} for c in command.calls]
    return {"kind": HOOKS, "job": command.job_id, "event": command.event, "calls": calls}


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


def decode(raw: str) -> dict:
    message = json.loads(raw)
    if message.get("kind") == EVENT:
        message["event"] = event_from_dict(message["event"])
    return message
