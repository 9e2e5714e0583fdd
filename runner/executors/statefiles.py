"""Task state on the step's side: the previous snapshot's files unpacked at `$STATE_DIR`, and what the step
writes to `$STATE_OUT_DIR` packed into a gzipped tar once it succeeded.

Both directories live in the step's out directory, which every executor already gives the step. The step
controls what is in `state-out`, so it is read without following a link, through directory descriptors (a
directory swapped for a link while it is read is not followed), regular files only, within limits.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import tempfile
from dataclasses import replace
from pathlib import Path

from ..engine.status import StepStatus
from ..git.untar import extract
from ..sizes import format_size
from .base import LogSink, StepResult

__all__ = ["MAX_STATE_FILES", "MAX_STATE_SIZE", "STATE_DIR_ENV", "STATE_OUT_ENV", "kept_state", "prepare_state"]

STATE_DIR_ENV = "STATE_DIR"
STATE_OUT_ENV = "STATE_OUT_DIR"
MAX_STATE_SIZE = 50 * 1024 * 1024  # bytes of files in one snapshot, as Strøm
MAX_STATE_FILES = 10_000
_MAX_DEPTH = 64
_STATE, _STATE_OUT = "state", "state-out"


def prepare_state(out_dir: Path, archive: str | None, uid: int | None = None, shared: bool = False) -> None:
    """`out_dir/state` with the previous snapshot's files (empty without one), `out_dir/state-out` empty and
    writable by the step: its own `uid`, the worker's user, or (`shared`: a container's user) anyone."""
    state, state_out = out_dir / _STATE, out_dir / _STATE_OUT
    state.mkdir()
    state.chmod(0o755)
    if archive:
        with tarfile.open(archive, mode="r:gz") as tar:
            extract(tar, state)
        for path in state.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
    state_out.mkdir(mode=0o700)
    if uid is not None:
        os.chown(state_out, uid, -1)
    elif shared:
        state_out.chmod(0o1777)


def kept_state(result: StepResult, out_dir: Path, logs: LogSink, untrusted: bool) -> StepResult:
    """`result` with the files the step left in `state-out` packed (a succeeded step's). An untrusted pull
    request's step keeps no state; files over the limits are not kept (said in the log), the STATE lines are."""
    if result.status is not StepStatus.SUCCEEDED:
        return result
    if untrusted:
        if result.state is not None or _has_files(out_dir / _STATE_OUT):
            logs.line("strom", "task state is not kept from a step of an untrusted pull request")
        return replace(result, state=None)
    try:
        archive = _pack(out_dir / _STATE_OUT)
    except _TooMuch as exc:
        logs.line("strom", f"the files in $STATE_OUT_DIR are not kept: {exc}")
        return result
    return replace(result, state_files=archive)


class _TooMuch(Exception):
    pass


def _has_files(path: Path) -> bool:
    try:
        return any(os.scandir(path))
    except OSError:
        return False


def _pack(root: Path) -> str | None:
    """A gzipped tar of the regular files and directories under `root` (None if there are none)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        if not any(os.scandir(fd)):
            return None
    except BaseException:
        os.close(fd)
        raise
    handle, path = tempfile.mkstemp(prefix="strom-state-", suffix=".tar.gz")
    budget = _Budget()
    try:
        with os.fdopen(handle, "wb") as file, tarfile.open(fileobj=file, mode="w:gz") as tar:
            _add_dir(tar, fd, "", budget, 0)
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    return path


class _Budget:
    def __init__(self) -> None:
        self.size = 0
        self.files = 0

    def take(self, size: int) -> None:
        self.size += size
        self.files += 1
        if self.size > MAX_STATE_SIZE:
            raise _TooMuch(f"they are over {format_size(MAX_STATE_SIZE)}")
        if self.files > MAX_STATE_FILES:
            raise _TooMuch(f"they are more than {MAX_STATE_FILES} files")


def _add_dir(tar: tarfile.TarFile, dir_fd: int, prefix: str, budget: _Budget, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _TooMuch(f"directories nest deeper than {_MAX_DEPTH}")
    for name in sorted(entry.name for entry in os.scandir(dir_fd)):
        member = f"{prefix}{name}"
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISDIR(info.st_mode):
            try:
                child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=dir_fd)
            except OSError:
                continue  # swapped for something else meanwhile
            try:
                tar.addfile(_info(member, tarfile.DIRTYPE, 0o755))
                budget.take(0)
                _add_dir(tar, child, member + "/", budget, depth + 1)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            data = _read_regular(dir_fd, name)
            if data is not None:
                budget.take(len(data))
                entry = _info(member, tarfile.REGTYPE, 0o755 if info.st_mode & 0o111 else 0o644)
                entry.size = len(data)
                tar.addfile(entry, io.BytesIO(data))


def _read_regular(dir_fd: int, name: str) -> bytes | None:
    """A regular file's bytes, never through a link nor of a file linked from elsewhere (hard links)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            return None
        if info.st_size > MAX_STATE_SIZE:
            raise _TooMuch(f"{name} alone is over {format_size(MAX_STATE_SIZE)}")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 20):
            size += len(chunk)
            if size > MAX_STATE_SIZE:
                raise _TooMuch(f"{name} alone is over {format_size(MAX_STATE_SIZE)}")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _info(name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, 0, 0, 0
    return info
