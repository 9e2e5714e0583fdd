"""The definitions and files a run uses: a commit of a git workspace, or a folder as it is now."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SpecError, StromError
from ..git.mirrors import GitError, Mirror
from ..gitinfo import git_context
from ..spec import load_texts
from ..spec.model import Workspace
from ..spec.problems import Problem
from ..spec.server_names import unknown_server_names
from ..store.definitions import digest as digest_of
from ..store.definitions import read_folder
from ..workspace_config import WorkspaceConfig

if TYPE_CHECKING:
    from .service import Service

__all__ = ["Checkout", "Checkouts", "commit_context"]

REFETCH_MISSING = 60.0


@dataclass(frozen=True)
class Checkout:
    digest: str  # content hash of the .strom files
    workspace: Workspace
    root: Path  # the snapshot directory (written on first use) or the folder
    git: Mapping[str, Any] | None
    commit: str | None
    mirror: Mirror | None = None

    def materialise(self, snapshots) -> Path:
        """Write the snapshot (if this is a commit) and return where steps find the workspace."""
        if self.mirror is not None:
            return snapshots.materialise(self.mirror, self.commit)
        return self.root


def commit_context(
    mirror: Mirror, sha: str, ref: str | None = None, branch: str | None = None, tag: str | None = None
) -> dict[str, Any]:
    """The `git` template context of a commit in a mirror."""
    info = mirror.commit_info(sha)
    ref = ref or (f"refs/heads/{branch}" if branch else f"refs/tags/{tag}" if tag else sha)
    return {**info, "ref": ref, "branch": branch or "", "tag": tag or "", "dirty": False}


class Checkouts:
    """Loads definitions per commit (cached by sha: a commit never changes) and per folder."""

    def __init__(self, service: Service, cache_size: int = 256):
        self.service = service
        self._digests: OrderedDict[str, str | SpecError] = OrderedDict()  # or why the commit is invalid
        self._size = cache_size
        self._lock = threading.Lock()
        self._next_fetch: dict[tuple[str, str], float] = {}
        self._fetch_locks: dict[tuple[str, str], threading.Lock] = {}

    def folder(self, ws: WorkspaceConfig) -> Checkout:
        folder = ws.folder
        if folder is None:  # parse_workspaces gives every folder workspace its folder
            raise ValueError(f"workspace {ws.name!r} is not a folder")
        texts = read_folder(folder, self.service.config.spec_limits.file_size)
        texts.update(self._libraries())
        digest = self.service.definitions.put(texts)
        loaded = self._checked(self.service.definitions.workspace(digest, folder))
        git = git_context(folder)
        return Checkout(digest, loaded, folder, git, (git or {}).get("sha"))

    def commit(
        self,
        ws: WorkspaceConfig,
        sha: str,
        *,
        ref: str | None = None,
        branch: str | None = None,
        tag: str | None = None,
    ) -> Checkout:
        """Definitions of commit `sha` (which must be in the mirror). Raises SpecError when invalid."""
        mirror = self.service.repos.mirror(ws)
        root = self.service.repos.snapshots.path(sha)
        definitions = self.service.definitions
        libraries = self._libraries()
        key = f"{sha}:{digest_of(libraries)}" if libraries else sha  # the same commit with other libraries differs
        with self._lock:
            digest = self._digests.get(key)
        if isinstance(digest, SpecError):  # invalid definitions are read once per commit, not once per request
            raise digest
        if digest is None:
            limits = self.service.config.spec_limits
            texts, exists, oversized = mirror.tree(sha, max_file=limits.file_size, max_files=limits.files)
            texts.update(libraries)
            digest = definitions.put(texts)
            names = self.service.config.workspaces
            result = load_texts(texts, root=root, file_exists=exists, limits=limits, sizes=oversized, workspaces=names)
            try:
                definitions.remember(digest, root, result.raise_for_errors())
            except SpecError as exc:
                self._remember(key, exc)
                raise
            self._remember(key, digest)
        loaded = self._checked(definitions.workspace(digest, root))
        return Checkout(digest, loaded, root, commit_context(mirror, sha, ref, branch, tag), sha, mirror)

    def _libraries(self) -> dict[str, str]:
        """The server's libraries' files for a workspace's definitions (none without `libraries:`)."""
        if not self.service.config.libraries:
            return {}
        try:
            return self.service.libraries.texts()
        except StromError as exc:
            problem = Problem("strom.yaml", 1, 1, "library", str(exc), "fix `libraries:` in the configuration")
            raise SpecError([problem]) from None

    def _remember(self, sha: str, digest) -> None:
        with self._lock:
            self._digests[sha] = digest
            while len(self._digests) > self._size:
                self._digests.popitem(last=False)

    def _checked(self, loaded: Workspace) -> Workspace:
        """Definitions that new runs may use: they name only notification channels and model providers this
        server has."""
        config = self.service.config
        problems = unknown_server_names(loaded, config.notifications.channels, config.agent_providers)
        if problems:
            raise SpecError(problems)
        return loaded

    def _fetching(self, workspace: str, branch: str) -> threading.Lock:
        with self._lock:
            return self._fetch_locks.setdefault((workspace, branch), threading.Lock())

    def head(self, ws: WorkspaceConfig, branch: str | None = None, fetch: bool = True) -> Checkout:
        """The newest commit of `branch` (default: the workspace's default branch).

        Without `fetch`, the mirror's copy of the branch is used; a branch never fetched is fetched
        at most once a minute (cron and the API's listings call this often)."""
        if ws.kind == "folder":
            return self.folder(ws)
        branch = branch or ws.default_branch
        mirror = self.service.repos.mirror(ws)
        sha = None if fetch else mirror.resolve(f"refs/heads/{branch}")
        if sha is None:
            with self._fetching(ws.name, branch):  # a caller meanwhile waits for that fetch, then reads its result
                sha = None if fetch else mirror.resolve(f"refs/heads/{branch}")
                if sha is None and (fetch or time.monotonic() >= self._next_fetch.get((ws.name, branch), 0)):
                    self._next_fetch[(ws.name, branch)] = time.monotonic() + REFETCH_MISSING
                    mirror.fetch(branch)
                    sha = mirror.resolve(f"refs/heads/{branch}")
        if sha is None:
            raise GitError(
                f"workspace {ws.name!r} has no branch {branch!r}"
                + (" yet: push to it first" if ws.kind == "hosted" else f" in {ws.url}")
            )
        return self.commit(ws, sha, branch=branch)
