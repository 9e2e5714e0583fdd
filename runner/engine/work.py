"""StepWork: a step with every template rendered, ready for an executor. Serialisable."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

__all__ = ["StepWork"]


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
    # script
    script: str | None = None
    source: str | None = None
    language: str = "shell"
    interpreter: str | None = None
    dependencies: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    runner: str = "local"
    workdir: str | None = None
    # containers
    image: str | None = None
    cmd: str | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    manifest: Mapping[str, Any] | None = None
    resources: Mapping[str, Any] | None = None
    # http
    url: str | None = None
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    has_json: bool = False
    body: str | None = None
    expected_status: tuple[int, ...] = ()
    # notify
    channels: tuple[str, ...] = ()
    title: str | None = None
    message: str | None = None
    # agent
    provider: str | None = None
    prompt: str | None = None
    system_prompt: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    output_schema: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepWork:
        known = {f.name: f for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            if isinstance(value, list) and key in (
                "tags",
                "mask",
                "dependencies",
                "args",
                "entrypoint",
                "command",
                "expected_status",
                "channels",
            ):
                value = tuple(value)
            values[key] = value
        return cls(**values)
