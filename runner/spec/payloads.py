"""What an action of each type does: one dataclass per type.

In an `Action` the fields are as written in the workflow file (templates unrendered); a `StepWork`
carries the same dataclass with its templates rendered (runner/engine/render.py), ready for an
executor. Fields every action has (env, tags, timeout, retry, workdir, resources) are the
action's own, not the payload's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from .absent import ABSENT

__all__ = [
    "AgentPayload",
    "ApprovalPayload",
    "ContainerPayload",
    "HttpMethod",
    "HttpPayload",
    "Language",
    "NotifyPayload",
    "P",
    "Payload",
    "Runner",
    "ScriptPayload",
    "TaskPayload",
    "payload_as",
]


class Runner(StrEnum):
    LOCAL = "local"
    DOCKER = "docker"
    POD = "pod"


class Language(StrEnum):
    SHELL = "shell"
    PYTHON = "python"
    JAVASCRIPT = "javascript"
    TYPESCRIPT = "typescript"
    GO = "go"


class HttpMethod(StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


@dataclass(frozen=True, slots=True)
class ScriptPayload:
    """type: script — inline code or a file of the workspace, run locally, in Docker or in a pod."""

    script: str | None = None
    literal: bool = False  # the script is not a valid template: it runs exactly as written
    source: str | None = None
    runner: Runner = Runner.LOCAL
    language: Language = Language.SHELL
    dependencies: tuple[str, ...] = ()
    interpreter: str | None = None
    args: tuple[Any, ...] = ()
    image: str | None = None  # runner: docker or pod
    manifest: Mapping[str, Any] | None = None  # runner: pod


@dataclass(frozen=True, slots=True)
class ContainerPayload:
    """type: docker or pod — an image run as it is."""

    image: str | None = None
    cmd: str | None = None
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    manifest: Mapping[str, Any] | None = None  # pod only


@dataclass(frozen=True, slots=True)
class TaskPayload:
    """type: task — a child run of another task (never sent to a worker); with `pattern`, one child run of each
    task it matches (`tasks`, resolved when the workspace is loaded), as the instances of a for_each."""

    task: str | None = None
    pattern: str | None = None
    tasks: tuple[str, ...] = ()
    workspace: str | None = None  # a cross-workspace action (`owner.action` in a step): run in `workspace`
    action: str | None = None  # ... this action of it, as a one-step child run there


@dataclass(frozen=True, slots=True)
class ApprovalPayload:
    """type: approval — a gate people approve or reject (never sent to a worker)."""

    message: str | None = None
    approvers: tuple[str, ...] = ()
    required_approvals: int = 1


@dataclass(frozen=True, slots=True)
class AgentPayload:
    """type: agent — a prompt to a model provider of the server's configuration."""

    provider: str | None = None
    prompt: str | None = None
    system_prompt: str | None = None
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    tools: tuple[Mapping[str, str], ...] = ()  # {"task": NAME} or {"mcp": SERVER}
    max_turns: int | None = None
    interactive: bool = False
    output_schema: Mapping[str, Any] | None = None  # set when rendered: the action's `output`
    mcp_servers: Mapping[str, Mapping[str, Any]] | None = None  # set when rendered: the servers `tools` names


@dataclass(frozen=True, slots=True)
class HttpPayload:
    """type: http — one request from the server."""

    url: str | None = None
    method: HttpMethod = HttpMethod.GET
    headers: Mapping[str, Any] = field(default_factory=dict)
    json_body: Any = ABSENT  # ABSENT: no JSON body (JSON null is a body)
    body: str | None = None
    expected_status: tuple[int, ...] = ()

    @property
    def has_json(self) -> bool:
        return self.json_body is not ABSENT


@dataclass(frozen=True, slots=True)
class NotifyPayload:
    """type: notify — a message to channels of the server's configuration."""

    channels: tuple[str, ...] = ()
    title: str | None = None
    message: str | None = None


Payload = ScriptPayload | ContainerPayload | TaskPayload | ApprovalPayload | AgentPayload | HttpPayload | NotifyPayload

P = TypeVar("P", bound=Payload)


def payload_as(payload: Payload | None, kind: type[P], what: object) -> P:
    """`payload` as the type the caller knows it has; TypeError naming both if it has another."""
    if not isinstance(payload, kind):
        raise TypeError(f"a {what} step carries {type(payload).__name__}, not {kind.__name__}")
    return payload
