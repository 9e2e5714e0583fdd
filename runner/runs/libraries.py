"""The server's libraries as files for a workspace's definitions (runner/spec/libraries.py): each library's
workflow files and the `source` files of its script actions, from its folder, or from its git repository at
its ref (a mirror under the data directory; a branch is fetched again at most once a minute, a tag or a
commit once)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import StromError
from ..git.mirrors import GitError, Mirror
from ..git.objects import is_sha
from ..spec import load_texts
from ..spec.libraries import library_files
from ..spec.payloads import ScriptPayload
from ..store.definitions import read_folder

if TYPE_CHECKING:
    from ..config import Config, LibraryConfig
    from ..git.repos import Repos

__all__ = ["Libraries", "LibraryError"]

REFETCH = 60.0  # seconds a branch's head is trusted before it is fetched again
MAX_SOURCE = 1024 * 1024  # bytes of one source file a library action may name


class LibraryError(StromError):
    status_hint = 502


class Libraries:
    """`repos` gives the data directory's repositories (where a git library's mirror and commits go)."""

    def __init__(self, config: Config, repos: Callable[[], Repos]):
        self.config = config
        self.repos = repos
        self._fetched: dict[str, float] = {}
        self._commits: dict[Path, dict[str, str]] = {}  # a git library's files by its commit's snapshot
        self._lock = threading.Lock()

    def texts(self) -> dict[str, str]:
        """Every configured library's files, as they travel in a workspace's definitions."""
        out: dict[str, str] = {}
        for library in self.config.libraries.values():
            out.update(library_files(library.name, self.files(library)))
        return out

    def files(self, library: LibraryConfig) -> dict[str, str]:
        root = self._root(library)
        if library.kind == "git":  # a commit's files never change
            with self._lock:
                cached = self._commits.get(root)
            if cached is None:
                cached = self._read(root)
                with self._lock:
                    self._commits[root] = cached
            return cached
        return self._read(root)

    def _read(self, root: Path) -> dict[str, str]:
        limits = self.config.spec_limits
        texts = read_folder(root, limits.file_size)
        loaded = load_texts(texts, root=root, limits=limits).workspace
        if loaded is None:
            return texts  # loading the workspace reports the library's problems
        for source in _sources(loaded):
            path = (root / source).resolve()
            if path.is_relative_to(root.resolve()) and path.is_file() and path.stat().st_size <= MAX_SOURCE:
                texts[source] = path.read_text(encoding="utf-8", errors="replace")
        return texts

    def _root(self, library: LibraryConfig) -> Path:
        if library.kind == "folder":
            assert library.path is not None  # the configuration gives every folder library its path
            if not library.path.is_dir():
                raise LibraryError(f"library {library.name!r}: folder {library.path} does not exist")
            return library.path
        mirror = Mirror(self.config.data_dir / "libraries" / f"{library.name}.git", library.url, library.token)
        ref = str(library.ref)

        def resolve() -> str | None:
            if is_sha(ref):
                return mirror.resolve(ref)
            return mirror.resolve(f"refs/tags/{ref}") or mirror.resolve(f"refs/heads/{ref}")

        try:
            mirror.ensure()
            with self._lock:
                due = time.monotonic() >= self._fetched.get(library.name, 0)
            sha = resolve()
            pinned = sha is not None and (is_sha(ref) or mirror.resolve(f"refs/tags/{ref}") is not None)
            if sha is None or (due and not pinned):
                mirror.fetch(*([ref] if is_sha(ref) else []))  # a name: every branch and tag, which it may be
                with self._lock:
                    self._fetched[library.name] = time.monotonic() + REFETCH
                sha = resolve()
            if sha is None:
                raise LibraryError(f"library {library.name!r}: {library.url} has no ref {ref!r}")
            return self.repos().snapshots.materialise(mirror, sha)
        except GitError as exc:
            raise LibraryError(f"library {library.name!r}: {exc}") from None


def _sources(workspace) -> set[str]:
    """The `source` files of the library's script actions, and of its tasks' inline script steps."""
    actions = list(workspace.actions.values())
    actions += [step.action for task in workspace.tasks.values() for step in task.flow.values()]
    return {a.payload.source for a in actions if isinstance(a.payload, ScriptPayload) and a.payload.source}
