"""Pausing and resuming a task or a trigger, as the API, the UI and the CLI ask for it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store.pauses import Pausable
from ..suggestions import suggest
from .creation import NotFound, load_definitions

if TYPE_CHECKING:
    from .service import Service

__all__ = ["set_paused"]


def set_paused(
    service: Service, workspace: str, kind: Pausable, name: str, by: str, paused: bool, reason: str | None = None
) -> dict[str, Any] | None:
    """Pause (or resume) the task or trigger `name`, which must be in the workspace's current definitions
    (NotFound, with a "did you mean", when it is not). What is paused now: the pause's record, or None."""
    loaded = load_definitions(service, workspace).workspace
    known = loaded.tasks if kind is Pausable.TASK else loaded.triggers
    if name not in known:
        hint = suggest(name, known)
        raise NotFound(f"no {kind} {name!r} in workspace {workspace!r}" + (f"; {hint}" if hint else ""))
    if paused:
        return service.pauses.pause(workspace, kind, name, by, reason)
    service.pauses.resume(workspace, kind, name)
    return None
