"""Events to and from JSON-ready dicts, for queues and logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from enum import Enum
from typing import Any

from ..errors import EngineError
from .events import EVENT_TYPES, ChildFinished, Event
from .status import RunStatus, StepStatus

__all__ = ["event_from_dict", "event_to_dict"]


def event_to_dict(event: Event) -> dict[str, Any]:
    data: dict[str, Any] = {"type": type(event).__name__}
    for f in fields(event):
        value = getattr(event, f.name)
        data[f.name] = value.value if isinstance(value, Enum) else value
    return data


def event_from_dict(data: Mapping[str, Any]) -> Event:
    kind = data.get("type")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EngineError(f"unknown event type {kind!r}")
    values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
    if "status" in values:
        enum = RunStatus if cls is ChildFinished else StepStatus
        values["status"] = enum(values["status"])
    try:
        return cls(**values)
    except TypeError as exc:
        raise EngineError(f"malformed {kind} event: {exc}") from exc
