"""Each commit a run uses is written out once, read-only, and shared by every step and every later run.

<root>/<sha>/        the tree of the commit (files made read-only)
<root>/<sha>.used    touched whenever a run starts on it (for garbage collection)
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..readonly import make_read_only, make_writable
from .mirrors import Mirror

__all__ = ["Snapshots"]


def _remove(path: Path) -> None:
    if path.exists():
        make_writable(path)
        shutil.rmtree(path, ignore_errors=True)


class Snapshots:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._lock = threading.Lock()

    def path(self, sha: str) -> Path:
        return self.root / sha

    def materialise(self, mirror: Mirror, sha: str) -> Path:
        """The snapshot directory of `sha`, written from the mirror now if it does not exist yet."""
        return self.ensure(sha, lambda tmp: mirror.export(sha, tmp))

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
        return removed
