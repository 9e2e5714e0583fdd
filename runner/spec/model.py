"""The workspace model: frozen values that are valid once the loader has built them."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from .absent import ABSENT
from .payloads import HttpMethod, Language, P, Payload, Runner, ScriptPayload, TaskPayload, payload_as

__all__ = [
    "ABSENT",
    "SERVER_SIDE_TYPES",
    "Action",
    "ActionType",
    "Backoff",
    "CatchUp",
    "Concurrency",
    "Connection",
    "ConnectionType",
    "Hook",
    "Hooks",
    "HttpMethod",
    "InputField",
    "InputType",
    "Language",
    "Location",
    "NotifyEvent",
    "NotifyRule",
    "RestartPolicy",
    "Retry",
    "Runner",
    "Step",
    "Task",
    "Trigger",
    "TriggerType",
    "WebhookMode",
    "Workspace",
]


class Location(NamedTuple):
    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class ActionType(StrEnum):
    SCRIPT = "script"
    DOCKER = "docker"
    POD = "pod"
    TASK = "task"
    APPROVAL = "approval"
    AGENT = "agent"
    HTTP = "http"
    NOTIFY = "notify"


SERVER_SIDE_TYPES = frozenset(
    {ActionType.TASK, ActionType.APPROVAL, ActionType.AGENT, ActionType.HTTP, ActionType.NOTIFY}
)


class InputType(str, Enum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    JSON = "json"


class TriggerType(str, Enum):
    SCHEDULER = "scheduler"
    WEBHOOK = "webhook"
    PUSH = "push"
    TAG = "tag"
    PULL_REQUEST = "pull_request"
    COMMENT = "comment"
    JOB = "job"
    ALERT = "alert"
    EVENT_SOURCE = "event_source"


class RestartPolicy(str, Enum):
    """When an event source's consumer is started again after its run ends."""

    ALWAYS = "always"
    ON_FAILURE = "on_failure"
    NEVER = "never"


class Backoff(str, Enum):
    """How the delay between retry attempts grows."""

    FIXED = "fixed"
    EXPONENTIAL = "exponential"  # doubling, capped (runner/engine/retry.py)


class Concurrency(str, Enum):
    """What a trigger does when a run it started for the same group is still unfinished."""

    ALLOW = "allow"  # start another run alongside
    SKIP = "skip"  # start nothing
    CANCEL_PREVIOUS = "cancel_previous"  # cancel the unfinished run, then start


class WebhookMode(str, Enum):
    """How a webhook trigger answers its caller."""

    ASYNC = "async"  # at once, with the run's id
    SYNC = "sync"  # when the run ends (up to `timeout_secs`), with its result


class CatchUp(str, Enum):
    """Which cron tick missed while no scheduler ran is fired (the `scheduler.catch_up` setting)."""

    LATEST = "latest"  # the most recent one
    NONE = "none"  # none: a tick older than a few seconds is recorded as handled, not fired


class NotifyEvent(StrEnum):
    """What a `notify:` rule can ask to hear of: how a run ended, a gate that waits, or a recovery (the
    first success after failures on the same branch). A str: it compares, prints and serialises as its value."""

    FAILED = "failed"
    TIMED_OUT = "timed_out"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"
    WAITING = "waiting"
    RECOVERED = "recovered"


@dataclass(frozen=True, slots=True)
class InputField:
    name: str
    type: str  # an InputType value, or the name of a connection type
    label: str | None = None
    description: str | None = None
    required: bool = False
    default: Any = ABSENT
    options: tuple[Any, ...] | None = None
    multiple: bool = False
    allow_custom: bool = False
    secret: bool = False
    order: int | None = None
    location: Location | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    max_attempts: int = 1
    delay: float = 0.0
    backoff: Backoff = Backoff.FIXED
    jitter: bool = False


@dataclass(frozen=True, slots=True)
class Action:
    """An action as written: what every action has, and `payload`, what its type does (runner/spec/payloads.py)."""

    name: str
    type: ActionType
    location: Location
    payload: Payload
    inline: bool = False
    label: str | None = None
    description: str | None = None
    input: Mapping[str, InputField] = field(default_factory=dict)
    output: Mapping[str, Any] | None = None
    env: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    timeout: float | None = None
    retry: Retry | None = None
    workdir: str | None = None
    resources: Mapping[str, Any] | None = None
    field_locations: Mapping[str, Location] = field(default_factory=dict)

    def payload_as(self, kind: builtins.type[P]) -> P:
        """The payload, as the type the caller knows this action has (TypeError if it has another)."""
        return payload_as(self.payload, kind, self.type)

    @property
    def server_side(self) -> bool:
        return self.type in SERVER_SIDE_TYPES

    @property
    def called_task(self) -> str | None:
        """The task a task action runs (None for other types)."""
        return self.payload.task if isinstance(self.payload, TaskPayload) else None

    @property
    def ability(self) -> str | None:
        """The worker ability this action needs, or None when the server runs it."""
        if isinstance(self.payload, ScriptPayload):
            return {Runner.LOCAL: "script", Runner.DOCKER: "docker", Runner.POD: "kubernetes"}[self.payload.runner]
        if self.type is ActionType.DOCKER:
            return "docker"
        if self.type is ActionType.POD:
            return "kubernetes"
        if self.type is ActionType.AGENT:
            return "agent"
        return None


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    action: Action
    location: Location
    action_ref: str | None = None  # None for an inline action
    label: str | None = None
    description: str | None = None
    depends_on: tuple[str, ...] = ()
    input: Mapping[str, Any] = field(default_factory=dict)
    input_given: bool = False
    continue_on_failure: bool = False
    timeout: float | None = None
    when: str | None = None
    for_each: Any = None
    sequential: bool = False
    retry: Retry | None = None
    tags: tuple[str, ...] = ()
    field_locations: Mapping[str, Location] = field(default_factory=dict)
    stage: str | None = None  # the stage it is written in, for a task written with `stages:`
    # The steps of the previous stage it waits for besides its own depends_on (they are in depends_on too):
    # they block it when they fail, but do not skip it when they were all skipped.
    stage_after: tuple[str, ...] = ()

    @property
    def effective_retry(self) -> Retry:
        return self.retry or self.action.retry or Retry()

    @property
    def effective_timeout(self) -> float | None:
        return self.timeout if self.timeout is not None else self.action.timeout

    @property
    def effective_tags(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(self.action.tags + self.tags))


@dataclass(frozen=True, slots=True)
class Hook:
    action: Action
    action_ref: str
    location: Location
    input: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NotifyRule:
    """Tell `channels` when a run of the task ends in one of `events` (on `branches`, if given)."""

    channels: tuple[str, ...]
    events: tuple[NotifyEvent, ...]
    location: Location
    branches: tuple[str, ...] = ()
    title: str | None = None
    body: str | None = None


@dataclass(frozen=True, slots=True)
class Hooks:
    on_success: tuple[Hook, ...] = ()
    on_error: tuple[Hook, ...] = ()
    on_cancel: tuple[Hook, ...] = ()
    on_suspended: tuple[Hook, ...] = ()

    def for_event(self, event: str) -> tuple[Hook, ...]:
        """The hooks of `event`, one of HOOK_EVENTS (runner/spec/fields.py): "on_success", "on_error", ..."""
        hooks: tuple[Hook, ...] = getattr(self, event)
        return hooks

    def __bool__(self) -> bool:
        return bool(self.on_success or self.on_error or self.on_cancel or self.on_suspended)


@dataclass(frozen=True, slots=True)
class Task:
    name: str
    location: Location
    flow: Mapping[str, Step]
    order: tuple[str, ...]  # topological order of the flow
    label: str | None = None
    description: str | None = None
    mode: str | None = None
    folder: str | None = None
    input: Mapping[str, InputField] = field(default_factory=dict)
    timeout: float | None = None
    retry: Retry | None = None
    hooks: Hooks = Hooks()
    notify: tuple[NotifyRule, ...] | None = None  # None: the workspace's default rules
    stages: tuple[str, ...] = ()  # the enabled stages in order, for a task written with `stages:`
    api: bool = False  # its steps get STROM_URL and a token for the API, scoped to the workspace and the run

    @property
    def leaves(self) -> tuple[str, ...]:
        needed = {dep for step in self.flow.values() for dep in step.depends_on}
        return tuple(name for name in self.order if name not in needed)


@dataclass(frozen=True, slots=True)
class Trigger:
    name: str
    type: TriggerType
    task: str
    location: Location
    input: Mapping[str, Any] = field(default_factory=dict)
    enabled: bool = True
    label: str | None = None
    description: str | None = None
    # scheduler
    cron: str | None = None  # as written, or made from `schedule`
    schedule: str | None = None  # the English it was written in, if it was
    timezone: str = "UTC"
    concurrency: Concurrency = Concurrency.ALLOW
    # webhook
    hook_name: str | None = None
    secret: str | None = None
    mode: WebhookMode = WebhookMode.ASYNC
    timeout_secs: int = 30
    force_refresh: bool = False  # scheduler, webhook: fetch the newest commit before starting
    # repository events
    branches: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()
    actions: tuple[str, ...] = ()
    command: str | None = None
    args: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()  # job: of the runs after which it starts; alert: firing, resolved
    labels: Mapping[str, str] = field(default_factory=dict)  # alert: label name -> pattern (runner/spec/patterns.py)
    # event_source: `task` is the consumer, each of its OUTPUT lines starts `target_task`
    target_task: str | None = None
    restart_policy: RestartPolicy = RestartPolicy.ALWAYS
    backoff_secs: int = 5
    max_in_flight: int = 10


@dataclass(frozen=True, slots=True)
class ConnectionType:
    name: str
    properties: Mapping[str, InputField]
    location: Location


@dataclass(frozen=True, slots=True)
class Connection:
    name: str
    type: str | None
    values: Mapping[str, Any]
    location: Location


@dataclass(frozen=True)
class Workspace:
    root: Path
    files: tuple[str, ...] = ()
    actions: Mapping[str, Action] = field(default_factory=dict)
    tasks: Mapping[str, Task] = field(default_factory=dict)
    triggers: Mapping[str, Trigger] = field(default_factory=dict)
    secrets: Mapping[str, Any] = field(default_factory=dict)
    connection_types: Mapping[str, ConnectionType] = field(default_factory=dict)
    connections: Mapping[str, Connection] = field(default_factory=dict)
    mcp_servers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # as written (templates unrendered)
    hooks: Hooks = Hooks()
    notify: tuple[NotifyRule, ...] = ()  # default rules for tasks without their own
