"""StepWork: a step with every template rendered, ready for an executor. Serialisable.

What every step has is StepWork's own; what its action type does is its `payload`, the same
dataclass the action has (runner/spec/payloads.py) with its templates rendered.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ..spec.absent import ABSENT
from ..spec.payloads import (
    AgentPayload,
    ContainerPayload,
    HttpMethod,
    HttpPayload,
    Language,
    NotifyPayload,
    P,
    Payload,
    Runner,
    ScriptPayload,
    payload_as,
)

__all__ = ["StepWork"]

_PAYLOADS: dict[str, type[Payload]] = {
    "script": ScriptPayload,
    "docker": ContainerPayload,
    "pod": ContainerPayload,
    "agent": AgentPayload,
    "http": HttpPayload,
    "notify": NotifyPayload,
}
_ENUMS = {"runner": Runner, "language": Language, "method": HttpMethod}


@dataclass(frozen=True)
class StepWork:
    job_id: str
    step: str
    attempt: int
    kind: str  # an ActionType value
    task: str = ""
    workspace: str = ""
    ability: str | None = None  # script | docker | kubernetes; None: runs on the server
    tags: tuple[str, ...] = ()
    timeout: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    mask: tuple[str, ...] = ()  # secret values to hide in logs
    event: Mapping[str, Any] | None = None
    commit: str | None = None
    snapshot: str | None = None  # where the workspace is (a folder, or a snapshot id)
    untrusted: bool = False  # an untrusted pull request's step: strict sandbox only
    network: bool = True  # False: the step gets no network (untrusted steps, unless their workspace allows it)
    api: bool = False  # the task has `api: true`: the worker gives the step STROM_URL and the run's token
    workdir: str | None = None  # script, docker and pod steps
    resources: Mapping[str, Any] | None = None
    # the object holding the files of the task state the step starts from: "" none, None the task's newest
    # (the worker looks it up when the step starts; see runner/store/task_states.py)
    state_files: str | None = None
    state_archive: str | None = None  # that object on the worker's disk (set by the worker)
    answer: str | None = None  # an agent step going on after its question: the answer
    payload: Payload | None = None

    def payload_as(self, kind: type[P]) -> P:
        """The payload, as the type the caller knows this step has (TypeError if it has another)."""
        return payload_as(self.payload, kind, self.kind)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "payload"}
        if self.payload is not None:
            payload = asdict(self.payload)
            if isinstance(self.payload, HttpPayload) and not self.payload.has_json:
                del payload["json_body"]  # ABSENT is not JSON; no key is no body
            data["payload"] = payload
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepWork:
        """From `to_dict`'s form, or from the flat form of earlier versions (payload fields among the others)."""
        known = {f.name for f in fields(cls)} - {"payload"}
        values = {key: _tupled(key, value) for key, value in data.items() if key in known}
        kind = _PAYLOADS.get(str(data.get("kind")))
        if kind is not None:
            nested = data.get("payload")
            values["payload"] = _payload(kind, nested if isinstance(nested, Mapping) else _flat(data))
        return cls(**values)


def _flat(data: Mapping[str, Any]) -> dict[str, Any]:
    """The payload fields of the flat form (`has_json` said whether `json_body` was a body)."""
    flat = dict(data)
    if "has_json" in flat and not flat.pop("has_json"):
        flat.pop("json_body", None)
    return flat


def _payload(kind: type[Payload], data: Mapping[str, Any]) -> Payload:
    values: dict[str, Any] = {}
    for f in fields(kind):
        if f.name not in data:
            continue
        value = _tupled(f.name, data[f.name])
        values[f.name] = _ENUMS[f.name](value) if f.name in _ENUMS and value is not None else value
    if kind is HttpPayload:
        values.setdefault("json_body", ABSENT)
    return kind(**values)


_TUPLES = {"tags", "mask", "dependencies", "args", "entrypoint", "command", "expected_status", "channels"}


def _tupled(key: str, value: Any) -> Any:
    return tuple(value) if isinstance(value, list) and key in _TUPLES else value
