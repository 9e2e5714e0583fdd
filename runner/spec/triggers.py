"""Build triggers: cron schedules, webhooks and repository events."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..suggestions import suggest
from ..templating import is_template
from .context import BuildContext
from .cron import CRON_HINT, cron_problem, timezone_problem
from .fields import TRIGGER_FIELDS, TRIGGER_TYPE_FIELDS
from .model import Concurrency, RestartPolicy, Trigger, TriggerType, WebhookMode
from .names import WEBHOOK_NAME
from .patterns import PatternError, matching_names
from .reader import Explain, Reader, location
from .schedules import GRAMMAR_HINT, ScheduleError, to_cron
from .yamlnodes import LocDict

__all__ = ["ALERT_STATUSES", "JOB_STATUSES", "PR_ACTIONS", "RESERVED_COMMANDS", "build_trigger", "secret_reference"]

PR_ACTIONS = (
    "opened",
    "synchronize",
    "reopened",
    "closed",
    "merged",
    "edited",
    "labeled",
    "unlabeled",
    "ready_for_review",
    "converted_to_draft",
    "review_requested",
)
JOB_STATUSES = ("succeeded", "failed", "cancelled", "timed_out")
# pull request commands Strom answers itself
RESERVED_COMMANDS = frozenset({"ok-to-test", "approve", "reject", "run", "retry", "cancel"})


def _explain(trigger_type: str) -> Explain:
    def explain(key: str) -> tuple[str, str] | None:
        if key in TRIGGER_FIELDS:
            owners = [t for t, keys in TRIGGER_TYPE_FIELDS.items() if key in keys]
            return (
                f"field {key!r} is not valid for a trigger of type {trigger_type!r} "
                f"(it belongs to type {', '.join(owners)})",
                "remove it or change the trigger type",
            )
        return None

    return explain


def build_trigger(data: LocDict, name: str, ctx: BuildContext) -> Trigger | None:
    r = Reader(data, ctx.problems, f"trigger {name!r}")
    if not r.require(
        "type", "add `type: scheduler` (or webhook, push, tag, pull_request, comment, job, alert, event_source)"
    ):
        return None
    kind = r.choice("type", TRIGGER_TYPE_FIELDS)
    if kind is None:
        return None
    r.check_keys(TRIGGER_TYPE_FIELDS[kind], _explain(kind))
    trigger_type = TriggerType(kind)
    r.require("task", "add `task: <name of the task to run>`")
    task = r.string("task")
    if task is not None and task not in ctx.task_names:
        hint = suggest(task, ctx.task_names)
        r.error(
            "task",
            "unknown-task",
            f"task {task!r} does not exist" + (f"; {hint}" if hint else ""),
            f"tasks in this workspace: {', '.join(sorted(ctx.task_names)) or '(none)'}",
        )
    allowed = TRIGGER_TYPE_FIELDS[kind]
    fields: dict[str, Any] = {
        "input": r.values("input"),
        "enabled": r.boolean("enabled", True),
        "label": r.string("name") if trigger_type is not TriggerType.WEBHOOK else None,
        "description": r.string("description"),
    }
    if "concurrency" in allowed:
        fields["concurrency"] = r.member("concurrency", Concurrency, Concurrency.ALLOW)
    for key, example in (("branches", '[main, "release/*"]'), ("tags", '["v*"]'), ("paths", '["src/**", "!docs/**"]')):
        if key in allowed:
            fields[key] = r.string_list(key, example) or ()
    fields.update(_SPECIFIC[trigger_type](r, ctx, name))
    if task is None:
        return None
    return Trigger(name=name, type=trigger_type, task=task, location=location(data.pos), **fields)


def _scheduler(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    if r.has("cron") and r.has("schedule"):
        r.error("schedule", "conflict", "a trigger has `cron` or `schedule`, not both", "keep one of them")
    schedule = r.string("schedule", '"every day at 04:00"') if r.has("schedule") else None
    cron = None
    if schedule is not None:
        try:
            cron = to_cron(schedule)
        except ScheduleError as exc:
            r.error("schedule", "bad-schedule", f"schedule {schedule!r}: {exc}", GRAMMAR_HINT)
    elif not r.has("schedule"):
        r.require("cron", f'add `cron: "0 2 * * *"` ({CRON_HINT}) or `schedule: "every day at 02:00"`')
        cron = r.string("cron", '"0 2 * * *"')
        if cron is not None:
            problem = cron_problem(cron)
            if problem:
                r.error("cron", "bad-cron", problem, f"use {CRON_HINT}")
    timezone = r.string("timezone", "Europe/Copenhagen") or "UTC"
    problem = timezone_problem(timezone)
    if problem:
        r.error("timezone", "bad-timezone", problem, "use an IANA name such as UTC, Europe/Berlin or America/New_York")
    return {"cron": cron, "schedule": schedule, "timezone": timezone, "force_refresh": r.boolean("force_refresh")}


_SECRET_REFERENCE = re.compile(r"\{\{\s*secrets?(?:\.([A-Za-z_][A-Za-z0-9_]*)|\[\s*(['\"])([^'\"]+)\2\s*\])\s*\}\}")


def secret_reference(secret: str) -> str | None:
    """The secret's name when `secret` is `{{ secret.NAME }}` (or `secrets.NAME`, `secret['NAME']`), else None."""
    match = _SECRET_REFERENCE.fullmatch(secret.strip())
    return (match.group(1) or match.group(3)) if match else None


def _webhook(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    r.require("name", "add `name: <url-safe name>`; the endpoint is /hooks/<name>")
    hook_name = r.string("name")
    if hook_name is not None:
        if not WEBHOOK_NAME.fullmatch(hook_name):
            r.error(
                "name",
                "bad-name",
                f"webhook name {hook_name!r} is not URL-safe",
                "use letters, digits, '-' and '_' only",
            )
        elif hook_name in ctx.webhook_names:
            first = ctx.webhook_names[hook_name]
            r.error(
                "name",
                "duplicate-name",
                f"webhook name {hook_name!r} is already used by trigger {first!r}",
                "give each webhook its own name",
            )
        else:
            ctx.webhook_names[hook_name] = name
    return {
        "hook_name": hook_name,
        "secret": _hook_secret(r),
        "mode": r.member("mode", WebhookMode, WebhookMode.ASYNC),
        "timeout_secs": r.integer("timeout_secs", 1, 300) or 30,
        "force_refresh": r.boolean("force_refresh"),
    }


def _hook_secret(r: Reader) -> str | None:
    """A hook's `secret`: a plain value (warned about) or a reference to one configured secret."""
    secret = r.string("secret")
    if secret and not is_template(secret):
        r.warning(
            "secret",
            "literal-secret",
            "this webhook secret is written in the repository",
            'reference a configured secret instead: `secret: "{{ secret.HOOK_TOKEN }}"`',
        )
    elif secret and secret_reference(secret) is None:
        r.error(
            "secret",
            "bad-value",
            "a webhook's secret is a plain value or a reference to one secret; "
            "other templates are not rendered for callers who have not proven anything yet",
            'write `secret: "{{ secret.HOOK_TOKEN }}"`',
        )
    return secret


def _pull_request(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    actions = r.string_list("actions", "[opened, synchronize]") or ()
    for action in actions:
        if action not in PR_ACTIONS:
            hint = suggest(action, PR_ACTIONS)
            r.error(
                "actions",
                "bad-value",
                f"unknown pull request action {action!r}" + (f"; {hint}" if hint else ""),
                f"actions: {', '.join(PR_ACTIONS)}",
            )
    return {"actions": actions}


def _comment(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    r.require("command", "add `command: deploy` (runs on a PR comment starting with /deploy)")
    command = (r.string("command") or "").lstrip("/")
    if r.has("command") and (not command or not command.replace("-", "").replace("_", "").isalnum()):
        r.error(
            "command",
            "bad-value",
            f"command {r.raw('command')!r} must be a single word",
            "write it like `command: deploy`",
        )
    elif command.lower() in RESERVED_COMMANDS:
        r.error("command", "reserved", f"/{command} is Strom's own command", "choose another word")
    return {"command": command or None, "args": r.string_list("args", "[environment]") or ()}


def _job(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    r.require("after", "add `after: [<task>]`: the tasks whose finished runs start this one")
    after = r.string_list("after", "[build]") or ()
    for task in after:
        if task not in ctx.task_names:
            hint = suggest(task, ctx.task_names)
            r.error("after", "unknown-task", f"task {task!r} does not exist" + (f"; {hint}" if hint else ""))
    statuses = r.string_list("statuses", "[succeeded, failed]") or ("succeeded",)
    for status in statuses:
        if status not in JOB_STATUSES:
            r.error("statuses", "bad-value", f"unknown status {status!r}", f"statuses: {', '.join(JOB_STATUSES)}")
    return {"after": after, "statuses": statuses}


ALERT_STATUSES = ("firing", "resolved")


def _alert(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    if not WEBHOOK_NAME.fullmatch(name):
        r.error(
            None,
            "bad-name",
            f"alert trigger {name!r} names its URL, /hooks/alertmanager/{name}",
            "use letters, digits, '-' and '_' only",
        )
    r.require("secret", 'add `secret: "{{ secret.ALERTMANAGER_TOKEN }}"`; Alertmanager sends it as a bearer token')
    secret = _hook_secret(r)
    one = isinstance(r.raw("status", None), str)
    statuses = (r.string("status"),) if one else r.string_list("status", "[firing, resolved]")
    for status in statuses or ():
        if status not in ALERT_STATUSES:
            r.error("status", "bad-value", f"unknown alert status {status!r}", "statuses: firing, resolved")
    labels: dict[str, str] = {}
    for label, pattern in r.scalar_map("labels", '{ severity: critical, alertname: "Disk*" }').items():
        try:
            matching_names(pattern, ())
        except PatternError as exc:
            r.error("labels", "bad-value", f"label {label!r}: {exc}", "a glob like `Disk*` or `^(critical|page)$`")
        labels[label] = pattern
    return {"secret": secret, "statuses": tuple(statuses or ("firing",)), "labels": labels}


def _event_source(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    r.require("target_task", "add `target_task: <task each OUTPUT line of the consumer starts>`")
    target = r.string("target_task")
    if target is not None and target not in ctx.task_names:
        hint = suggest(target, ctx.task_names)
        r.error("target_task", "unknown-task", f"task {target!r} does not exist" + (f"; {hint}" if hint else ""))
    elif target is not None and target == r.raw("task", None):
        r.error("target_task", "bad-value", f"task {target!r} would consume its own events", "name another task")
    backoff = r.integer("backoff_secs", 0, 86400)
    return {
        "target_task": target,
        "restart_policy": r.member("restart_policy", RestartPolicy, RestartPolicy.ALWAYS),
        "backoff_secs": 5 if backoff is None else backoff,
        "max_in_flight": r.integer("max_in_flight", 1, 1000) or 10,
    }


def _nothing(r: Reader, ctx: BuildContext, name: str) -> dict[str, Any]:
    return {}


# The fields only a trigger of each type has.
_SPECIFIC: dict[TriggerType, Callable[[Reader, BuildContext, str], dict[str, Any]]] = {
    TriggerType.SCHEDULER: _scheduler,
    TriggerType.WEBHOOK: _webhook,
    TriggerType.PUSH: _nothing,
    TriggerType.TAG: _nothing,
    TriggerType.PULL_REQUEST: _pull_request,
    TriggerType.COMMENT: _comment,
    TriggerType.JOB: _job,
    TriggerType.ALERT: _alert,
    TriggerType.EVENT_SOURCE: _event_source,
}
