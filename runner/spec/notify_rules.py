"""Build `notify:` rules (task-level, and workspace-level defaults) and check channel names.

notify:
  - channels: [team-chat]
    events: [failed, recovered]      # default: failed, timed_out, waiting, recovered
    branches: [main]
    title: "{{ task.name }} {{ run.status }}"
"""

from __future__ import annotations

from collections.abc import Iterable

from ..suggestions import suggest
from .context import BuildContext
from .fields import NOTIFY_RULE_FIELDS
from .model import ActionType, Location, NotifyEvent, NotifyRule, Workspace
from .payloads import NotifyPayload
from .problems import Problem
from .reader import Reader, describe, location
from .yamlnodes import LocDict, LocList

__all__ = ["DEFAULT_EVENTS", "NOTIFY_EVENTS", "build_notify_rules", "unknown_channels"]

NOTIFY_EVENTS = tuple(event.value for event in NotifyEvent)  # the words rules may use, as they are listed in errors
DEFAULT_EVENTS = (NotifyEvent.FAILED, NotifyEvent.TIMED_OUT, NotifyEvent.WAITING, NotifyEvent.RECOVERED)


def unknown_channels(workspace: Workspace, configured: Iterable[str]) -> list[Problem]:
    """Errors for every channel a notify rule or notify action names that the server does not configure.

    Checked where definitions are accepted for new runs (and by the pre-receive hook), not when a
    worker loads them, since a worker does not need the server's channels."""
    configured = frozenset(configured)
    found: list[Problem] = []

    def check(channels: Iterable[str], at: Location, what: str) -> None:
        for channel in channels:
            if channel not in configured:
                hint = suggest(channel, configured)
                found.append(
                    Problem(
                        at.file,
                        at.line,
                        at.column,
                        "unknown-channel",
                        f"{what}: notification channel {channel!r} is not configured on the server"
                        + (f"; {hint}" if hint else ""),
                        f"use one of: {', '.join(sorted(configured)) or 'none are configured'} "
                        "(or add it under notifications.channels in the server configuration)",
                    )
                )

    for rule in workspace.notify:
        check(rule.channels, rule.location, "notify")
    for task in workspace.tasks.values():
        for rule in task.notify or ():
            check(rule.channels, rule.location, f"task {task.name!r}: notify")
        for step in task.flow.values():
            if step.action.type is ActionType.NOTIFY and step.action_ref is None:  # named ones: below
                at = step.action.field_locations.get("channels") or task.location
                check(step.action.payload_as(NotifyPayload).channels, at, f"task {task.name!r}, step {step.name!r}")
    for name, action in workspace.actions.items():
        if action.type is ActionType.NOTIFY:
            check(
                action.payload_as(NotifyPayload).channels,
                action.field_locations.get("channels") or action.location,
                f"action {name!r}",
            )
    return sorted(set(found), key=lambda p: (p.file, p.line, p.column))


def build_notify_rules(parent: LocDict, key: str, ctx: BuildContext, what: str) -> tuple[NotifyRule, ...] | None:
    """The rules under `parent[key]`, or None when the key is absent."""
    if key not in parent or parent[key] is None:
        return None
    value = parent[key]
    if not isinstance(value, list):
        ctx.problems.error(
            parent.at(key),
            "wrong-type",
            f"{what}: notify must be a list of rules, got {describe(value)}",
            "write it like `notify: [{ channels: [team-chat], events: [failed] }]`",
        )
        return ()
    rules = []
    for index, item in enumerate(value):
        where = f"{what}: notify[{index}]"
        if not isinstance(item, LocDict):
            ctx.problems.error(
                value.at(index) if isinstance(value, LocList) else parent.at(key),
                "wrong-type",
                f"{where} must be a mapping, got {describe(item)}",
                "write it like `{ channels: [team-chat], events: [failed] }`",
            )
            continue
        rule = _rule(Reader(item, ctx.problems, where), item, ctx)
        if rule is not None:
            rules.append(rule)
    return tuple(rules)


def _rule(r: Reader, data: LocDict, ctx: BuildContext) -> NotifyRule | None:
    r.check_keys(NOTIFY_RULE_FIELDS)
    if not r.require("channels", "add `channels: [team-chat]` (channel names from the server configuration)"):
        return None
    channels = r.string_list("channels", "[team-chat]") or ()
    if not channels:
        r.error("channels", "missing-field", "`channels` is empty", "name at least one channel")
        return None
    events = r.string_list("events", "[failed, recovered]")
    for event in events or ():
        if event not in NOTIFY_EVENTS:
            hint = suggest(event, NOTIFY_EVENTS)
            r.error(
                "events",
                "bad-value",
                f"unknown event {event!r}" + (f"; {hint}" if hint else ""),
                f"events: {', '.join(NOTIFY_EVENTS)}",
            )
    known = tuple(NotifyEvent(event) for event in events if event in NOTIFY_EVENTS) if events is not None else None
    return NotifyRule(
        channels=channels,
        events=known if known is not None else DEFAULT_EVENTS,
        location=location(data.at("channels")),
        branches=r.string_list("branches", "[main]") or (),
        title=r.template("title"),
        body=r.template("body"),
    )
