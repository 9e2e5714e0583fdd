"""Where a workspace's git data lives: its bare mirror (or hosted repository) and the shared snapshots.

<data_dir>/mirrors/<workspace>.git    bare mirror of a `git:` workspace
<data_dir>/hosted/<workspace>.git     bare repository of a `hosted: true` workspace
<data_dir>/snapshots/<sha>/           read-only tree of each commit runs use
<data_dir>/archives/<sha>.tar.gz      the same, packed for remote workers
"""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path

from ..workspace_config import WorkspaceConfig
from .hosted import HostedRepos
from .mirrors import Mirror
from .snapshots import Snapshots

__all__ = ["Repos", "pr_head_ref"]


def pr_head_ref(forge: str | None, number: int) -> str:
    return f"refs/merge-requests/{number}/head" if forge == "gitlab" else f"refs/pull/{number}/head"


class Repos:
    def __init__(self, data_dir: Path):
        self.root = Path(data_dir).resolve()
        self._mirrors: dict[str, Mirror] = {}
        self._lock = threading.Lock()

    @cached_property
    def snapshots(self) -> Snapshots:
        return Snapshots(self.root / "snapshots")

    @cached_property
    def hosted(self) -> HostedRepos:
        return HostedRepos(self.root / "hosted")

    @property
    def archives(self) -> Path:
        return self.root / "archives"

    def mirror(self, ws: WorkspaceConfig) -> Mirror:
        with self._lock:
            mirror = self._mirrors.get(ws.name)
            if mirror is None:
                if ws.kind == "hosted":
                    mirror = Mirror(self.hosted.ensure(ws.name, ws.default_branch))
                else:
                    mirror = Mirror(
                        self.root / "mirrors" / f"{ws.name}.git", ws.url, ws.token, ws.token_user, ws.ssh_key
                    )
                self._mirrors[ws.name] = mirror
            return mirror
