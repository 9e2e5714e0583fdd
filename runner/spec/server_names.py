"""Names definitions use that the server configures: notification channels (`notifications.channels`) and model
providers (`agents.providers`).

Checked where definitions are accepted for new runs and by the pre-receive hook, not when a worker loads them,
since a worker does not need the server's names."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..suggestions import suggest
from .model import Action, ActionType, Location, Workspace
from .payloads import AgentPayload, NotifyPayload
from .problems import Problem

__all__ = ["unknown_channels", "unknown_providers", "unknown_server_names"]


def unknown_server_names(
    workspace: Workspace, channels: Iterable[str] | None, providers: Iterable[str] | None
) -> list[Problem]:
    """Errors for every channel and provider the server does not configure (None: not checked)."""
    found = unknown_channels(workspace, channels) if channels is not None else []
    return found + (unknown_providers(workspace, providers) if providers is not None else [])


def unknown_channels(workspace: Workspace, configured: Iterable[str]) -> list[Problem]:
    """Errors for every channel a notify rule or notify action names that the server does not configure."""
    configured = frozenset(configured)
    found: list[Problem] = []

    def check(channels: Iterable[str], at: Location, what: str) -> None:
        for channel in channels:
            if channel not in configured:
                found.append(_unconfigured(at, what, "notification channel", channel, configured))

    for rule in workspace.notify:
        check(rule.channels, rule.location, "notify")
    for task in workspace.tasks.values():
        for rule in task.notify or ():
            check(rule.channels, rule.location, f"task {task.name!r}: notify")
    for what, action, fallback in _own_actions(workspace):
        if action.type is ActionType.NOTIFY:
            check(action.payload_as(NotifyPayload).channels, action.field_locations.get("channels") or fallback, what)
    return _sorted(found)


def unknown_providers(workspace: Workspace, configured: Iterable[str]) -> list[Problem]:
    """Errors for every agent step or action whose `provider` the server does not configure."""
    configured = frozenset(configured)
    found = []
    for what, action, _fallback in _own_actions(workspace):
        if action.type is not ActionType.AGENT:
            continue
        provider = action.payload_as(AgentPayload).provider
        if provider is not None and provider not in configured:
            at = action.field_locations.get("provider") or action.location
            found.append(_unconfigured(at, what, "model provider", provider, configured))
    return _sorted(found)


def _own_actions(workspace: Workspace) -> Iterator[tuple[str, Action, Location]]:
    """(what, action, where to point when it has no field location) of every inline step action and named action
    (a step naming an action is checked there, once)."""
    for task in workspace.tasks.values():
        for step in task.flow.values():
            if step.action_ref is None:
                yield f"task {task.name!r}, step {step.name!r}", step.action, task.location
    for name, action in workspace.actions.items():
        yield f"action {name!r}", action, action.location


_SETTING = {
    "notification channel": ("unknown-channel", "notifications.channels"),
    "model provider": ("unknown-provider", "agents.providers"),
}


def _unconfigured(at: Location, what: str, noun: str, name: str, configured: frozenset[str]) -> Problem:
    code, setting = _SETTING[noun]
    hint = suggest(name, configured)
    return Problem(
        at.file,
        at.line,
        at.column,
        code,
        f"{what}: {noun} {name!r} is not configured on the server" + (f"; {hint}" if hint else ""),
        f"use one of: {', '.join(sorted(configured)) or 'none are configured'} "
        f"(or add it under {setting} in the server configuration)",
    )


def _sorted(found: list[Problem]) -> list[Problem]:
    return sorted(set(found), key=lambda p: (p.file, p.line, p.column))
