"""Unpacking commit archives safely on every Python 3.11: tarfile's "tar" filter where it exists (3.11.4+),
else the same rules by hand — no member outside the target (through `..`, an absolute path or a link
already unpacked), no setuid, setgid or sticky bit, no group or world write bit."""

from __future__ import annotations

import os
import stat
import tarfile
from pathlib import Path

__all__ = ["extract"]

_CLEARED = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH


def extract(tar: tarfile.TarFile, target: Path) -> None:
    if hasattr(tarfile, "tar_filter"):
        tar.extractall(target, filter="tar")
        return
    root = os.path.realpath(target)
    for member in tar:
        member.name = member.name.lstrip("/")
        where = os.path.realpath(os.path.join(root, member.name))
        if os.path.commonpath([root, where]) != root:
            raise tarfile.TarError(f"{member.name!r} would be written outside the snapshot")
        if member.islnk() and os.path.commonpath([root, os.path.realpath(os.path.join(root, member.linkname))]) != root:
            raise tarfile.TarError(f"hard link {member.name!r} points outside the snapshot")
        member.mode &= ~_CLEARED
        tar.extract(member, root, set_attrs=not member.issym())
