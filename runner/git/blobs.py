"""The file contents snapshots are made of, each stored once: every file of a snapshot is a hard link
into this store. Creating a file costs tens of times what a link costs on common filesystems, and most
files of a commit are those of the commit before.

<root>/<2 hex>/<38 hex>.r    a file's content (read-only)
<root>/<2 hex>/<38 hex>.x    the same content, executable
<root>/<2 hex>/<38 hex>.l    a symbolic link
"""

from __future__ import annotations

import os
import threading
import time
from io import BytesIO
from pathlib import Path

from .objects import Objects

__all__ = ["Blobs"]

SYMLINK = 0o120000


def _kind(mode: int) -> str:
    if mode == SYMLINK:
        return "l"
    return "x" if mode & 0o111 else "r"


class Blobs:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, binsha: bytes, kind: str) -> Path:
        hexsha = binsha.hex()
        return self.root / hexsha[:2] / f"{hexsha[2:]}.{kind}"

    def place(self, objects: Objects, binsha: bytes, mode: int, dest: Path) -> None:
        """Make `dest` (which must not exist) the blob `binsha` with git mode `mode`: a link into the store,
        the content stored first if it is not there yet, or a file of its own when no link can be made."""
        kind = _kind(mode)
        blob = self.path(binsha, kind)
        for _ in range(2):
            try:
                os.link(blob, dest, follow_symlinks=False)
                return
            except FileNotFoundError:
                self._store(objects, binsha, kind, blob)
            except OSError:  # too many links to one inode (EMLINK), or the store on another filesystem
                break
        _write(objects, binsha, kind, dest)

    def _store(self, objects: Objects, binsha: bytes, kind: str, blob: Path) -> None:
        blob.parent.mkdir(parents=True, exist_ok=True)
        tmp = blob.with_name(f".{blob.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.unlink(missing_ok=True)
        try:
            _write(objects, binsha, kind, tmp)
            os.replace(tmp, blob)  # another writer's copy of the same content is as good
        finally:
            tmp.unlink(missing_ok=True)

    def collect(self, older_than: float) -> int:
        """Remove contents no snapshot links to any more (and writes left half done), `older_than` seconds
        after they were stored: a snapshot being written may be about to link to a new one."""
        if not self.root.is_dir():
            return 0
        cutoff = time.time() - older_than
        removed = 0
        for fan in os.scandir(self.root):
            if not fan.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(fan.path):
                info = entry.stat(follow_symlinks=False)
                unused = info.st_nlink == 1 or entry.name.startswith(".")
                if unused and info.st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
        return removed


def _write(objects: Objects, binsha: bytes, kind: str, dest: Path) -> None:
    if kind == "l":
        target = BytesIO()
        objects.copy(binsha, target)
        os.symlink(target.getvalue(), dest)
        return
    with open(dest, "xb") as out:
        objects.copy(binsha, out)
        os.fchmod(out.fileno(), 0o555 if kind == "x" else 0o444)
