"""Each commit a run uses is written out once, read-only, and shared by every step and every later run.

<root>/<sha>/        the tree of the commit: directories, and hard links into the blob store
<root>/<sha>.used    touched whenever a run starts on it (for garbage collection)
<root>/.blobs/       each file content once (see blobs.py)

A snapshot holds the commit's contents byte for byte: no `.gitattributes` conversion applies (line
endings, `ident`, filters), and a submodule is an empty directory.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..readonly import make_read_only, make_writable
from .blobs import Blobs
from .mirrors import GitError, Mirror
from .objects import TREE

__all__ = ["Snapshots"]


def _remove(path: Path) -> None:
    if path.exists():
        make_writable(path)
        shutil.rmtree(path, ignore_errors=True)


BLOBS = ".blobs"


class Snapshots:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.blobs = Blobs(self.root / BLOBS)
        self._lock = threading.Lock()

    def path(self, sha: str) -> Path:
        return self.root / sha

    def materialise(self, mirror: Mirror, sha: str) -> Path:
        """The snapshot directory of `sha`, written from the mirror now if it does not exist yet."""
        return self.ensure(sha, lambda tmp: self._write(mirror, sha, tmp))

    def _write(self, mirror: Mirror, sha: str, target: Path) -> None:
        objects = mirror.objects
        try:
            entries = objects.walk(sha)
        except ValueError as exc:  # a name git would not check out either
            raise GitError(f"cannot write a snapshot of {sha[:12]} from {mirror.path.name}: {exc}") from None
        target.mkdir()
        try:
            for path, mode, binsha in entries:
                if mode == TREE or mode >> 12 == 0o16:  # a directory, or a submodule's (empty) place
                    (target / path).mkdir()
                else:
                    self.blobs.place(objects, binsha, mode, target / path)
        except OSError as exc:  # a full disk, a path longer than the filesystem takes
            raise GitError(f"cannot write a snapshot of {sha[:12]} from {mirror.path.name}: {exc}") from None

    def ensure(self, sha: str, write: Callable[[Path], None]) -> Path:
        """The snapshot directory of `sha`; if missing, `write` fills a new directory that then appears atomically."""
        target = self.path(sha)
        if not target.is_dir():
            with self._lock:
                if not target.is_dir():
                    self.root.mkdir(parents=True, exist_ok=True)
                    tmp = self.root / f".{sha}.{os.getpid()}.{threading.get_ident()}"
                    _remove(tmp)
                    try:
                        write(tmp)
                    except BaseException:
                        _remove(tmp)
                        raise
                    make_read_only(tmp)
                    try:
                        os.rename(tmp, target)
                    except OSError:  # another process won the race: keep theirs
                        make_writable(tmp)
                        shutil.rmtree(tmp, ignore_errors=True)
        self.touch(sha)
        return target

    def touch(self, sha: str) -> None:
        marker = self.root / f"{sha}.used"
        marker.touch()

    def collect(self, keep: set[str], older_than: float) -> list[str]:
        """Remove snapshots not in `keep` whose last use is older than `older_than` seconds."""
        removed: list[str] = []
        if not self.root.is_dir():
            return removed
        cutoff = time.time() - older_than
        for entry in self.root.iterdir():
            if entry.name == BLOBS:
                continue
            if entry.name.startswith(".") and entry.is_dir() and entry.stat().st_mtime < cutoff:
                _remove(entry)  # left by a process that died while writing it
                continue
            if not entry.is_dir() or entry.name.startswith(".") or entry.name in keep:
                continue
            marker = self.root / f"{entry.name}.used"
            used = marker.stat().st_mtime if marker.exists() else entry.stat().st_mtime
            if used > cutoff:
                continue
            make_writable(entry)
            shutil.rmtree(entry, ignore_errors=True)
            marker.unlink(missing_ok=True)
            removed.append(entry.name)
        self.blobs.collect(older_than)
        return removed
