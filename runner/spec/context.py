"""What builders need to know about the whole workspace while building one part of it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .problems import Problems

__all__ = ["BuildContext"]


@dataclass
class BuildContext:
    problems: Problems
    root: Path | None = None
    file_exists: Callable[[str], bool] | None = None  # for trees not on disk (a pushed commit)
    action_names: frozenset[str] = frozenset()
    task_names: frozenset[str] = frozenset()
    connection_types: frozenset[str] = frozenset()
    workspaces: frozenset[str] = frozenset()  # the server's workspaces: `name.action` may name an action of one
    mcp_servers: frozenset[str] | None = None  # the workspace's `mcp_servers` (None: not known here)
    webhook_names: dict[str, str] = field(default_factory=dict)  # webhook name -> the trigger that uses it
