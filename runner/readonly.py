"""Make a directory tree read-only (files lose their write bits, directories become 0555), and undo it.

Used for the read-only copy a step gets without bubblewrap, and for commit snapshots. Symbolic
links are left alone, so nothing outside the tree changes.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["make_read_only", "make_writable"]

_WRITE = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


def make_read_only(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                mode = os.stat(path).st_mode
                if mode & _WRITE:  # a snapshot's files are read-only links already
                    os.chmod(path, mode & ~_WRITE)
    for dirpath, dirnames, _ in os.walk(root, topdown=False):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o555)
    os.chmod(root, 0o555)


def make_writable(root: Path) -> None:
    """Directories writable again, so the tree can be removed (files keep their modes)."""
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            path = os.path.join(dirpath, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755)
    if os.path.exists(root):
        os.chmod(root, 0o755)
