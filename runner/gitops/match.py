"""Which repository triggers an event starts: pure functions of the triggers and the normalised event."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..forges.event import RepoEvent
from ..spec.globs import any_included, included
from ..spec.model import Concurrency, Trigger, TriggerType
from ..spec.patterns import PatternError, matching_names
from .commands import parse_commands

__all__ = [
    "DEFAULT_PR_ACTIONS",
    "KIND_TRIGGER",
    "Matched",
    "alert_mismatch",
    "hook_trigger",
    "match_event",
    "parse_command",
]

DEFAULT_PR_ACTIONS = ("opened", "synchronize", "reopened")
KIND_TRIGGER = {
    "push": TriggerType.PUSH,
    "tag": TriggerType.TAG,
    "pull_request": TriggerType.PULL_REQUEST,
    "comment": TriggerType.COMMENT,
}


@dataclass(frozen=True)
class Matched:
    trigger: Trigger
    args: Mapping[str, str] = field(default_factory=dict)  # inputs filled by a comment command's words
    group: str | None = None  # runs of one concurrency group supersede each other


def parse_command(body: str | None) -> tuple[str, list[str]] | None:
    """`/deploy prod eu` -> ("deploy", ["prod", "eu"]): the comment's first command line."""
    commands = parse_commands(body)
    return (commands[0].name, list(commands[0].words)) if commands else None


def _fmt(patterns) -> str:
    return "[" + ", ".join(patterns) + "]"


def _paths_ok(trigger: Trigger, event: RepoEvent) -> str | None:
    if not trigger.paths or event.changed_files is None:
        return None
    if any_included(event.changed_files, trigger.paths):
        return None
    shown = ", ".join(event.changed_files[:5]) + (", ..." if len(event.changed_files) > 5 else "")
    return f"no changed file matches paths {_fmt(trigger.paths)} (changed: {shown or 'none'})"


def _check(trigger: Trigger, event: RepoEvent, command: tuple[str, list[str]] | None) -> str | None:
    """Why `trigger` does not fire for `event`, or None when it does."""
    if trigger.type is TriggerType.PUSH:
        if not included(event.branch or "", trigger.branches):
            return f"branch {event.branch!r} is not in {_fmt(trigger.branches)}"
        return _paths_ok(trigger, event)
    if trigger.type is TriggerType.TAG:
        if not included(event.tag or "", trigger.tags):
            return f"tag {event.tag!r} is not in {_fmt(trigger.tags)}"
        return None
    if trigger.type not in (TriggerType.PULL_REQUEST, TriggerType.COMMENT):
        return "not a repository trigger"
    pr = event.pr
    if pr is None:  # the forges' parsers give every pull request and comment event its pull request
        return "the event names no pull request"
    if trigger.type is TriggerType.PULL_REQUEST:
        actions = trigger.actions or DEFAULT_PR_ACTIONS
        action = pr.action
        if action not in actions and not (action == "merged" and "closed" in actions):
            return f"action {action!r} is not in {_fmt(actions)}"
        if not included(pr.base_ref, trigger.branches):
            return f"base branch {pr.base_ref!r} is not in {_fmt(trigger.branches)}"
        return _paths_ok(trigger, event)
    if trigger.type is TriggerType.COMMENT:
        if command is None or command[0] != (trigger.command or "").lower():
            return f"the comment is not /{trigger.command}"
        if trigger.branches and not included(pr.base_ref, trigger.branches):
            return f"base branch {pr.base_ref!r} is not in {_fmt(trigger.branches)}"
    return None


def _args(trigger: Trigger, words: list[str]) -> dict[str, str]:
    """The command's words fill `args` in order; the last name takes the rest of the words."""
    out = {}
    for i, name in enumerate(trigger.args):
        if i >= len(words):
            break
        out[name] = " ".join(words[i:]) if i == len(trigger.args) - 1 else words[i]
    return out


def _group(trigger: Trigger, event: RepoEvent) -> str | None:
    if trigger.concurrency is Concurrency.ALLOW or trigger.type is TriggerType.COMMENT:
        return None
    scope = f"pr{event.pr.number}" if event.pr else (event.branch or event.tag or "")
    return f"{trigger.name}:{scope}"


def match_event(triggers: Iterable[Trigger], event: RepoEvent) -> tuple[list[Matched], list[str]]:
    """(the triggers that fire, why each trigger of the event's type does not)."""
    wanted = KIND_TRIGGER.get(event.kind)
    if wanted is None:
        return [], [f"no trigger type runs on {event.kind} events"]
    command = parse_command(event.comment.body) if event.comment else None
    matched, reasons = [], []
    candidates = [t for t in triggers if t.type is wanted]
    for trigger in candidates:
        if not trigger.enabled:
            reasons.append(f"trigger {trigger.name!r} is disabled")
            continue
        why = _check(trigger, event, command)
        if why:
            reasons.append(f"trigger {trigger.name!r}: {why}")
            continue
        args = _args(trigger, command[1]) if command and trigger.type is TriggerType.COMMENT else {}
        matched.append(Matched(trigger, args, _group(trigger, event)))
    if not candidates:
        reasons.append(f"no {wanted.value} trigger in .strom/")
    return matched, reasons


def alert_mismatch(trigger: Trigger, alert: Mapping[str, Any]) -> str | None:
    """Why an alert (runner/forges/alertmanager.py) does not start an alert trigger's task, or None if it does."""
    if alert.get("status") not in trigger.statuses:
        return f"the alert is {alert.get('status')}; the trigger starts on {', '.join(trigger.statuses)}"
    labels = alert.get("labels") or {}
    for name, pattern in trigger.labels.items():
        value = labels.get(name)
        if value is None:
            return f"the alert has no label {name!r}"
        try:
            if not matching_names(pattern, [value]):
                return f"label {name}={value[:80]!r} does not match {pattern!r}"
        except PatternError as exc:
            return f"label {name}: {exc}"
    return None


def hook_trigger(triggers: Iterable[Trigger], kind: TriggerType, name: object) -> Trigger | None:
    """The trigger of `kind` (webhook or alert) a hook's URL names: a webhook by its `name`, an alert trigger by
    its own name (each unique in a workspace, as the loader checks)."""
    for trigger in triggers:
        if trigger.type is kind and (trigger.hook_name if kind is TriggerType.WEBHOOK else trigger.name) == name:
            return trigger
    return None
