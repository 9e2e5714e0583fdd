"""Messages on the events list (engine events for a run, and requests to create runs), and the kinds
of the messages on the reports list (what to tell a forge). Both travel as JSON objects whose
`kind` names what they are."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from ..engine.codec import event_from_dict, event_to_dict
from ..engine.events import Event

__all__ = [
    "MessageKind",
    "ReportKind",
    "create_child_message",
    "decode",
    "encode",
    "event_message",
    "hooks_message",
    "message_kind",
    "report_kind",
]


class MessageKind(StrEnum):
    """What a message on the events list (or the delayed set) asks for. A str: it compares, prints and
    serialises as its value."""

    EVENT = "event"  # an engine event for a run
    CREATE_CHILD = "create_child"
    HOOKS = "hooks"
    RETRY = "retry"  # a task-level retry whose backoff ended
    DISPATCH = "dispatch"  # a step whose backoff ended
    INTAKE = "intake"  # a repository event to process again
    RUN_FINISHED = "run_finished"  # for job triggers


class ReportKind(StrEnum):
    """What a message on the reports list asks the reporter to tell the forge. A str: it compares,
    prints and serialises as its value."""

    RUN = "run"  # a run's commit status and its row of the summary comment
    WAITING = "waiting"  # a pull request waits for /ok-to-test: a note on the summary comment
    INVALID = "invalid"  # the definitions at a commit are invalid
    REACT = "react"  # a reaction on a command's comment
    REPLY = "reply"  # a reply to a command's comment


def message_kind(value: object) -> MessageKind | None:
    """The kind a message names; None for none, or one this version does not know."""
    try:
        return MessageKind(value) if isinstance(value, str) else None
    except ValueError:
        return None


def report_kind(value: object) -> ReportKind | None:
    """The kind a report names; None for none, or one this version does not know."""
    try:
        return ReportKind(value) if isinstance(value, str) else None
    except ValueError:
        return None


def event_message(job_id: str, event: Event) -> dict[str, Any]:
    return {"kind": MessageKind.EVENT, "job": job_id, "event": event_to_dict(event)}


def create_child_message(command) -> dict[str, Any]:
    return {
        "kind": MessageKind.CREATE_CHILD,
        "job": command.job_id,
        "step": command.step,
        "child": command.child_job,
        "task": command.task,
        "inputs": dict(command.inputs),
        "depth": command.depth,
        "workspace": command.workspace,
    }


def hooks_message(command) -> dict[str, Any]:
    calls = [{"action": c.action_ref, "inputs": dict(c.inputs), "error": c.error} for c in command.calls]
    return {"kind": MessageKind.HOOKS, "job": command.job_id, "event": command.event, "calls": calls}


def encode(message: dict) -> str:
    return json.dumps(message, separators=(",", ":"), default=str)


def decode(raw: str) -> dict:
    message = json.loads(raw)
    if message_kind(message.get("kind")) is MessageKind.EVENT:
        message["event"] = event_from_dict(message["event"])
    return message
