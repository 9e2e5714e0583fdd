"""Which keys each object of the format accepts, what they hold, and what they mean.

One table serves the validator (allowed keys, "did you mean", per-type validity) and the
JSON Schema printed by `strom schema`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from .model import Backoff, Concurrency, HttpMethod, RestartPolicy, WebhookMode

__all__ = [
    "ACTION_FIELDS",
    "ACTION_TYPE_FIELDS",
    "ACTION_TYPE_REQUIRED",
    "HOOK_EVENTS",
    "HOOK_FIELDS",
    "INPUT_FIELDS",
    "LANGUAGE_ALIASES",
    "RESOURCE_FIELDS",
    "RETRY_FIELDS",
    "STAGE_FIELDS",
    "STEP_FIELDS",
    "TASK_FIELDS",
    "TOP_LEVEL_FIELDS",
    "TRIGGER_COMMON",
    "TRIGGER_FIELDS",
    "TRIGGER_TYPE_FIELDS",
    "Field",
    "types_accepting",
]


@dataclass(frozen=True, slots=True)
class Field:
    kind: str
    doc: str
    choices: tuple[str, ...] = ()


def _values(kind: type[Enum]) -> tuple[str, ...]:
    return tuple(member.value for member in kind)


HOOK_EVENTS = ("on_success", "on_error", "on_cancel", "on_suspended")

LANGUAGE_ALIASES = {
    "shell": "shell",
    "python": "python",
    "javascript": "javascript",
    "js": "javascript",
    "typescript": "typescript",
    "ts": "typescript",
    "go": "go",
}

ACTION_FIELDS: dict[str, Field] = {
    "type": Field(
        "choice", "What the action does.", ("script", "docker", "pod", "task", "approval", "agent", "http", "notify")
    ),
    "name": Field("string", "Display name."),
    "description": Field("string", "What the action does, for people."),
    "input": Field(
        "input_schema", "Input parameters the action takes (a schema on named actions; values on inline steps)."
    ),
    "output": Field(
        "output_schema", "Shape of the structured output (descriptive; agent actions send it to the model)."
    ),
    "env": Field("env_map", "Environment variables for the step; values are templates."),
    "tags": Field("string_list", "Worker tags the step needs (routing)."),
    "timeout": Field("duration", "Per-attempt time limit (max 24h); approvals: how long to wait."),
    "retry": Field("retry", "Retry policy: max_attempts (all attempts, the first included), delay, backoff, jitter."),
    "workdir": Field("template", "Working directory, relative to /workspace."),
    "resources": Field("resources", "CPU and memory requests for container runners."),
    "script": Field("template", "Inline script; a template."),
    "source": Field("template", "Script file, relative to the workspace root."),
    "runner": Field("choice", "Where a script runs.", ("local", "docker", "pod")),
    "language": Field("choice", "Script language.", tuple(LANGUAGE_ALIASES)),
    "dependencies": Field("string_list", "Packages installed for this step only (not for shell)."),
    "interpreter": Field("string", "Interpreter binary to use instead of the detected one."),
    "args": Field("template_list", "Arguments passed to the script; each a template."),
    "manifest": Field("mapping", "Kubernetes pod manifest deep-merged into the generated pod."),
    "image": Field("template", "Container image."),
    "cmd": Field("template", "Shell command run in the container."),
    "entrypoint": Field("template_list", "Container entrypoint override."),
    "command": Field("template_list", "Container command arguments."),
    "task": Field("string", "Task to run as a child job."),
    "pattern": Field("string", "Instead of `task`: run every task this matches (globs, `^regex$`, comma-separated)."),
    "message": Field("template", "Message shown to approvers / sent by a notify step; a template."),
    "approvers": Field("string_list", "Who may approve: user names and @org/team entries."),
    "required": Field("integer", "How many distinct approvals are needed (default 1)."),
    "provider": Field("string", "LLM provider id from the server configuration."),
    "prompt": Field("template", "User message for the model; a template."),
    "system_prompt": Field("template", "System message for the model; a template."),
    "model": Field("string", "Model override."),
    "max_tokens": Field("integer", "Maximum tokens the model may produce."),
    "temperature": Field("number", "Sampling temperature (0-2)."),
    "tools": Field("list", "Tools the model may call: [{task: NAME}] or [{mcp: SERVER}]."),
    "max_turns": Field("integer", "How many model turns the tool loop may take (1-100)."),
    "interactive": Field("boolean", "The model may ask the people running the task a question (ask_user)."),
    "url": Field("template", "URL to call."),
    "method": Field("choice", "HTTP method.", _values(HttpMethod)),
    "headers": Field("env_map", "Request headers; values are templates."),
    "json": Field("any", "JSON request body; strings inside are templates."),
    "body": Field("template", "Raw request body; a template."),
    "expected_status": Field("status_list", "Status codes that count as success (default: any 2xx)."),
    "channels": Field("string_list", "Notification channels (named in the server configuration)."),
    "title": Field("template", "Notification title; a template."),
}

_EXEC_COMMON = ("type", "name", "description", "input", "output")
ACTION_TYPE_FIELDS: dict[str, frozenset[str]] = {
    "script": frozenset(
        _EXEC_COMMON
        + (
            "env",
            "tags",
            "timeout",
            "retry",
            "workdir",
            "resources",
            "script",
            "source",
            "runner",
            "language",
            "dependencies",
            "interpreter",
            "args",
            "manifest",
            "image",
        )
    ),
    "docker": frozenset(
        _EXEC_COMMON
        + ("env", "tags", "timeout", "retry", "workdir", "resources", "image", "cmd", "entrypoint", "command")
    ),
    "pod": frozenset(
        _EXEC_COMMON
        + (
            "env",
            "tags",
            "timeout",
            "retry",
            "workdir",
            "resources",
            "image",
            "cmd",
            "entrypoint",
            "command",
            "manifest",
        )
    ),
    "task": frozenset(_EXEC_COMMON + ("task", "pattern")),
    "approval": frozenset(_EXEC_COMMON + ("message", "timeout", "approvers", "required")),
    "agent": frozenset(
        _EXEC_COMMON
        + (
            "provider",
            "prompt",
            "system_prompt",
            "model",
            "max_tokens",
            "temperature",
            "timeout",
            "retry",
            "tools",
            "max_turns",
            "interactive",
        )
    ),
    "http": frozenset(
        _EXEC_COMMON + ("url", "method", "headers", "json", "body", "expected_status", "timeout", "retry")
    ),
    "notify": frozenset(_EXEC_COMMON + ("channels", "title", "message")),
}


# Fields an action of each type cannot do without (script needs one of script/source).
ACTION_TYPE_REQUIRED: dict[str, tuple[str, ...]] = {
    "docker": ("image",),
    "pod": ("image",),
    "agent": ("provider", "prompt"),
    "http": ("url",),
    "notify": ("channels",),
}


def types_accepting(field_name: str) -> list[str]:
    return [t for t, names in ACTION_TYPE_FIELDS.items() if field_name in names]


STEP_FIELDS: dict[str, Field] = {
    "action": Field("string", "Name of the action this step runs (omit it for an inline action)."),
    "name": Field("string", "Display name."),
    "description": Field("string", "What the step does, for people."),
    "depends_on": Field("string_list", "Steps that must finish first."),
    "input": Field("values_map", "Values passed to the action's input; templates."),
    "continue_on_failure": Field(
        "boolean", "Run even if a dependency failed, and do not fail the job if this step fails."
    ),
    "timeout": Field("duration", "Per-attempt time limit for this step (max 24h)."),
    "when": Field(
        "template", 'Condition; the step is skipped when it renders falsy ("", false, 0, null, none, [], {}).'
    ),
    "for_each": Field("for_each", "A list, or a template yielding one: one step instance per item."),
    "sequential": Field("boolean", "Run for_each instances one at a time."),
    "retry": Field("retry", "Retry policy for this step (overrides the action's)."),
    "tags": Field("string_list", "Extra worker tags for this step."),
}

STAGE_FIELDS: dict[str, Field] = {
    "name": Field("string", "The stage's name, shown in the graph and timeline."),
    "enabled": Field("boolean", "false: the stage's steps are checked but never run (default true)."),
    "steps": Field("flow", "The stage's steps: a map of step name to step; they run in parallel."),
}

TASK_FIELDS: dict[str, Field] = {
    "name": Field("string", "Display name."),
    "description": Field("string", "What the task does, for people."),
    "mode": Field("string", "Execution mode (display only; Strom always distributes steps)."),
    "folder": Field("string", "Folder shown in the UI, e.g. deploy/staging."),
    "input": Field("input_schema", "Input parameters of the task."),
    "flow": Field("flow", "The steps: a map of step name to step."),
    "stages": Field("stages", "Instead of `flow`: stages run one after another, the steps of a stage in parallel."),
    "timeout": Field("duration", "Time limit for the whole run (max 7d)."),
    "retry": Field("retry", "Re-run the whole task when it fails."),
    "api": Field("boolean", "Give steps STROM_URL and a token for this workspace, valid while the run lasts."),
    "on_success": Field("hooks", "Hooks run when a run succeeds."),
    "on_error": Field("hooks", "Hooks run when a run fails or times out."),
    "on_cancel": Field("hooks", "Hooks run when a run is cancelled."),
    "on_suspended": Field("hooks", "Hooks run when a step starts waiting for approval."),
    "notify": Field("notify_rules", "Notification rules: channels told when runs fail, recover, wait, ..."),
}

NOTIFY_RULE_FIELDS: dict[str, Field] = {
    "channels": Field("string_list", "Channel names from the server configuration."),
    "events": Field(
        "string_list",
        "failed, timed_out, succeeded, cancelled, waiting, recovered (default: failed, timed_out, waiting, recovered).",
    ),
    "branches": Field("string_list", "Only runs on these branches (globs; `!` excludes)."),
    "title": Field("template", "Title template (default: task, status and workspace)."),
    "body": Field("template", "Body template (default: status, duration, trigger, commit, failed steps, link)."),
}

HOOK_FIELDS: dict[str, Field] = {
    "action": Field("string", "Action to run."),
    "input": Field("values_map", "Input values; templates with the `hook` context."),
}

TRIGGER_COMMON: dict[str, Field] = {
    "type": Field(
        "choice",
        "What starts the task.",
        ("scheduler", "webhook", "push", "tag", "pull_request", "comment", "job", "alert", "event_source"),
    ),
    "task": Field("string", "Task to run."),
    "input": Field("values_map", "Input values for the task; templates over `event` and `git`."),
    "enabled": Field("boolean", "Whether the trigger is active (default true)."),
    "name": Field("string", "Display name (webhook triggers: the URL name, /hooks/<name>)."),
    "description": Field("string", "What the trigger is for."),
}

_TRIGGER_SPECIFIC: dict[str, Field] = {
    "cron": Field("string", "Cron expression: 5 fields, or 6 with seconds first."),
    "schedule": Field("string", 'The schedule in English instead of cron: "every day at 04:00", "every 15 minutes".'),
    "timezone": Field("string", "IANA time zone for the cron expression (default UTC)."),
    "concurrency": Field("choice", "When a previous run is still active.", _values(Concurrency)),
    "secret": Field("string", "Shared secret callers must send (Bearer token or ?secret=)."),
    "force_refresh": Field("boolean", "Fetch the newest commit of the default branch before starting the task."),
    "mode": Field("choice", "async answers at once; sync waits for the run's result.", _values(WebhookMode)),
    "timeout_secs": Field("integer", "How long a sync webhook waits (1-300 s)."),
    "branches": Field("string_list", "Branch globs (pull_request: base branches); `!` excludes."),
    "tags": Field("string_list", "Tag globs; `!` excludes."),
    "paths": Field("string_list", "Changed-file globs; `!` excludes."),
    "actions": Field("string_list", "Pull request actions: opened, synchronize, reopened, closed, ..."),
    "command": Field("string", "Comment command word, e.g. deploy for `/deploy`."),
    "args": Field("string_list", "Input names the command's words fill, in order."),
    "after": Field("string_list", "Tasks whose finished runs start this one."),
    "statuses": Field("string_list", "Statuses of those runs that count (default: succeeded)."),
    "labels": Field("map", "Alert labels that must match: name -> glob or ^regex$ (alert triggers)."),
    "status": Field("any", "Alert states that start the task: firing, resolved (default [firing])."),
    "target_task": Field(
        "string", "Task each OUTPUT line of the consumer (`task`) starts, with the line's JSON as input."
    ),
    "restart_policy": Field(
        "choice", "When the consumer is started again: always, on_failure, never.", _values(RestartPolicy)
    ),
    "backoff_secs": Field("integer", "Seconds to wait before starting the consumer again (default 5)."),
    "max_in_flight": Field("integer", "Target runs unfinished at once, at most (default 10); further lines wait."),
}
TRIGGER_FIELDS = {**TRIGGER_COMMON, **_TRIGGER_SPECIFIC}

_COMMON_TRIGGER_KEYS = tuple(TRIGGER_COMMON)
TRIGGER_TYPE_FIELDS: dict[str, frozenset[str]] = {
    "scheduler": frozenset(_COMMON_TRIGGER_KEYS + ("cron", "schedule", "timezone", "concurrency", "force_refresh")),
    "webhook": frozenset(_COMMON_TRIGGER_KEYS + ("secret", "mode", "timeout_secs", "force_refresh")),
    "push": frozenset(_COMMON_TRIGGER_KEYS + ("branches", "paths", "concurrency")),
    "tag": frozenset(_COMMON_TRIGGER_KEYS + ("tags", "concurrency")),
    "pull_request": frozenset(_COMMON_TRIGGER_KEYS + ("actions", "branches", "paths", "concurrency")),
    "comment": frozenset(_COMMON_TRIGGER_KEYS + ("command", "args", "branches")),
    "job": frozenset(_COMMON_TRIGGER_KEYS + ("after", "statuses", "branches")),
    "alert": frozenset(_COMMON_TRIGGER_KEYS + ("secret", "labels", "status")),
    "event_source": frozenset(
        _COMMON_TRIGGER_KEYS + ("target_task", "restart_policy", "backoff_secs", "max_in_flight")
    ),
}

INPUT_FIELDS: dict[str, Field] = {
    "type": Field("string", "string, text, integer, number, boolean, date, datetime, json, or a connection type."),
    "name": Field("string", "Label shown in forms."),
    "description": Field("string", "Help text."),
    "required": Field("boolean", "The caller must give a value (unless there is a default)."),
    "default": Field("any", "Value used when none is given; string defaults are templates over `secret`."),
    "options": Field("list", "Allowed values."),
    "multiple": Field("boolean", "The value is a list of options."),
    "allow_custom": Field("boolean", "Allow values outside `options`."),
    "secret": Field("boolean", "Mask the value in logs and the UI."),
    "order": Field("integer", "Display order in forms."),
    "enum": Field("list", "Old spelling of `options`."),
}

RETRY_FIELDS: dict[str, Field] = {
    "max_attempts": Field("integer", "Attempts in all, the first included (1-10); 1 means no retry."),
    "delay": Field("duration", "Wait before the next attempt (0-1h)."),
    "backoff": Field("choice", "fixed, or exponential (doubling, capped at 64x the delay).", _values(Backoff)),
    "jitter": Field("boolean", "Vary each delay by up to 25%."),
}

RESOURCE_FIELDS: dict[str, Field] = {
    "cpu": Field("string", "CPU request, e.g. 500m or 2."),
    "memory": Field("string", "Memory request, e.g. 256Mi."),
}

TOP_LEVEL_FIELDS: dict[str, Field] = {
    "actions": Field("map", "Reusable actions by name."),
    "tasks": Field("map", "Tasks by name."),
    "triggers": Field("map", "Triggers by name."),
    "secrets": Field("env_map", 'Secret references, e.g. "{{ env.DB_PASSWORD }}"; never the values themselves.'),
    "connection_types": Field("map", "Schemas of connections."),
    "connections": Field("map", "Named connections."),
    "on_success": Field("hooks", "Workspace default hooks when a run succeeds."),
    "on_error": Field("hooks", "Workspace default hooks when a run fails."),
    "on_cancel": Field("hooks", "Workspace default hooks when a run is cancelled."),
    "on_suspended": Field("hooks", "Workspace default hooks when a step waits for approval."),
    "notify": Field("notify_rules", "Default notification rules for tasks without their own `notify`."),
    "mcp_servers": Field("map", "MCP servers agent steps may use as tools, by name (stdio `command` or `url`)."),
}
