"""Check that agent steps name model providers the server configures (`agents.providers`)."""

from __future__ import annotations

from collections.abc import Iterable

from ..suggestions import suggest
from .model import ActionType, Workspace
from .payloads import AgentPayload
from .problems import Problem

__all__ = ["unknown_providers"]


def unknown_providers(workspace: Workspace, configured: Iterable[str]) -> list[Problem]:
    """Errors for every agent step or action whose `provider` the server does not configure. Checked where
    definitions are accepted for new runs, as notification channels are."""
    configured = frozenset(configured)
    found: list[Problem] = []
    actions = [(f"action {name!r}", action) for name, action in workspace.actions.items()]
    for task in workspace.tasks.values():
        actions += [
            (f"task {task.name!r}, step {step.name!r}", step.action)
            for step in task.flow.values()
            if step.action_ref is None
        ]
    for what, action in actions:
        if action.type is not ActionType.AGENT:
            continue
        provider = action.payload_as(AgentPayload).provider
        if provider is None or provider in configured:
            continue
        at = action.field_locations.get("provider") or action.location
        hint = suggest(provider, configured)
        found.append(
            Problem(
                at.file,
                at.line,
                at.column,
                "unknown-provider",
                f"{what}: model provider {provider!r} is not configured on the server" + (f"; {hint}" if hint else ""),
                f"use one of: {', '.join(sorted(configured)) or 'none are configured'} "
                "(or add it under agents.providers in the server configuration)",
            )
        )
    return sorted(set(found), key=lambda p: (p.file, p.line, p.column))
