"""Build `notify:` rules (task-level, and workspace-level defaults) and check channel names.

notify:
  - channels: [team-chat]
    events: [failed, recovered]      # default: failed, timed_out, waiting, recovered
    branches: [main]
    title: "{{ task.name }} {{ run.status }}"
"""

from __future__ import annotations

from ..suggestions import suggest
from .context import BuildContext
from .fields import NOTIFY_RULE_FIELDS
from .model import NotifyEvent, NotifyRule
from .reader import Reader, describe, location
from .yamlnodes import LocDict, LocList

__all__ = ["DEFAULT_EVENTS", "NOTIFY_EVENTS", "build_notify_rules"]

NOTIFY_EVENTS = tuple(event.value for event in NotifyEvent)  # the words rules may use, as they are listed in errors
DEFAULT_EVENTS = (NotifyEvent.FAILED, NotifyEvent.TIMED_OUT, NotifyEvent.WAITING, NotifyEvent.RECOVERED)


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
