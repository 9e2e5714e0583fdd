"""What builders need to know about the whole workspace while building one part of it."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

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
    webhook_names: dict = field(default_factory=dict)
