"""What a step leaves for Strom in its out directory besides its summary: task state (the previous snapshot's
files unpacked at `$STATE_DIR`, what it writes to `$STATE_OUT_DIR` packed into a gzipped tar) and artifacts
(what it writes to `$ARTIFACTS_DIR`, handed to the worker to store). Only a succeeded step's are kept.

The directories live in the step's out directory, which every executor already gives the step. The step
controls what is in them, so they are read without following a link, through directory descriptors (a
directory swapped for a link while it is read is not followed), regular files only, within limits.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from ..engine.status import StepStatus
from ..sizes import format_size
from .base import LogSink, StepResult

__all__ = [
    "ARTIFACTS_ENV",
    "MAX_STATE_ARCHIVE",
    "MAX_STATE_FILES",
    "MAX_STATE_SIZE",
    "OUT_DIRS",
    "STATE_DIR_ENV",
    "STATE_OUT_ENV",
    "ArtifactFile",
    "TooMuch",
    "artifact_files",
    "artifact_name_problem",
    "kept_files",
    "make_out_dirs",
    "pack_dir",
    "prepare_out",
    "remove_staging",
    "unpack_out",
]

STATE_DIR_ENV = "STATE_DIR"
STATE_OUT_ENV = "STATE_OUT_DIR"
ARTIFACTS_ENV = "ARTIFACTS_DIR"
OUT_DIRS = {STATE_DIR_ENV: "state", STATE_OUT_ENV: "state-out", ARTIFACTS_ENV: "artifacts"}  # in the out dir
MAX_STATE_SIZE = 50 * 1024 * 1024  # bytes of files in one snapshot, as Strøm
MAX_STATE_ARCHIVE = MAX_STATE_SIZE + 1024 * 1024  # the gzipped tar of that much may be a little larger
MAX_STATE_FILES = 10_000
MAX_ARTIFACTS = 1_000  # files one step may leave
_MAX_DEPTH = 64
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def make_out_dirs(out_dir: Path, shared: bool = False, state: bool = True) -> None:
    """The empty `state` (unless not `state`), `state-out` and `artifacts` directories."""
    for env, name in OUT_DIRS.items():
        if env == STATE_DIR_ENV and not state:
            continue
        path = out_dir / name
        path.mkdir(exist_ok=True)
        path.chmod(0o755 if env == STATE_DIR_ENV else 0o1777 if shared else 0o700)


def prepare_out(
    out_dir: Path, archive: str | None, uid: int | None = None, shared: bool = False, empty_elsewhere: bool = False
) -> None:
    """`state` with the previous snapshot's files (empty without one: not made when `empty_elsewhere`, the
    sandbox giving the step an empty directory of its own for that); `state-out` and `artifacts` empty and
    writable by the step: its own `uid`, the worker's user, or (`shared`: a container's user) anyone. (A
    directory costs a journaled filesystem tenths of a millisecond to make and remove.)"""
    make_out_dirs(out_dir, shared, state=bool(archive) or not empty_elsewhere)
    state = out_dir / OUT_DIRS[STATE_DIR_ENV]
    if archive:
        import tarfile  # only steps that start from state files pay for it

        from ..git.untar import extract

        with tarfile.open(archive, mode="r:gz") as tar:
            extract(tar, state)
        for path in state.rglob("*"):
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
    if uid is not None:
        for name in (OUT_DIRS[STATE_OUT_ENV], OUT_DIRS[ARTIFACTS_ENV]):
            os.chown(out_dir / name, uid, -1)


def kept_files(result: StepResult, out_dir: Path, logs: LogSink, untrusted: bool) -> StepResult:
    """`result` with what a succeeded step left: its state files packed (an untrusted pull request's step keeps
    no state; files over the limits are not kept, said in the log; the STATE lines are), and its artifacts
    directory moved out of the step's reach for the worker to store."""
    if result.status is not StepStatus.SUCCEEDED:
        return result
    return _kept_artifacts(_kept_state(result, out_dir, logs, untrusted), out_dir)


def _kept_state(result: StepResult, out_dir: Path, logs: LogSink, untrusted: bool) -> StepResult:
    state_out = out_dir / OUT_DIRS[STATE_OUT_ENV]
    if untrusted:
        if result.state is not None or _has_files(state_out):
            logs.line("strom", "task state is not kept from a step of an untrusted pull request")
        return replace(result, state=None)
    try:
        archive = pack_dir(state_out)
    except TooMuch as exc:
        logs.line("strom", f"the files in $STATE_OUT_DIR are not kept: {exc}")
        return result
    return replace(result, state_files=archive)


def _kept_artifacts(result: StepResult, out_dir: Path) -> StepResult:
    artifacts = out_dir / OUT_DIRS[ARTIFACTS_ENV]
    if not _has_files(artifacts):
        return result
    staging = Path(tempfile.mkdtemp(prefix="strom-artifacts-"))
    os.rename(artifacts, staging / "files")  # out of the step's directory, before it is removed
    return replace(result, artifacts_dir=str(staging))


class TooMuch(Exception):
    """What a step left is over a limit (said in the message)."""


def _has_files(path: Path) -> bool:
    try:
        with os.scandir(path) as entries:
            return any(entries)
    except OSError:
        return False


# ---------------------------------------------------------------- reading what the step wrote


def _walk(dir_fd: int, prefix: str, depth: int) -> Iterator[tuple[str, int | None]]:
    """(relative name, None) for each directory and (relative name, open descriptor) for each regular file with
    one link under `dir_fd`, sorted; never through a link. A descriptor is closed after the consumer's turn."""
    if depth > _MAX_DEPTH:
        raise TooMuch(f"directories nest deeper than {_MAX_DEPTH}")
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
                yield member, None
                yield from _walk(child, member + "/", depth + 1)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
            except OSError:
                continue
            try:
                opened = os.fstat(fd)
                if stat.S_ISREG(opened.st_mode) and opened.st_nlink == 1:  # not a file linked from elsewhere
                    yield member, fd
            finally:
                os.close(fd)


def _open_root(root: Path) -> int:
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)


def pack_dir(root: Path) -> str | None:
    """A gzipped tar of the regular files and directories under `root` (None if there are none)."""
    if not _has_files(root):
        return None
    import tarfile  # only steps that leave state files pay for it

    handle, path = tempfile.mkstemp(prefix="strom-state-", suffix=".tar.gz")
    size, count = 0, 0
    fd = _open_root(root)
    try:
        with os.fdopen(handle, "wb") as file, tarfile.open(fileobj=file, mode="w:gz") as tar:
            for name, file_fd in _walk(fd, "", 0):
                count += 1
                if count > MAX_STATE_FILES:
                    raise TooMuch(f"they are more than {MAX_STATE_FILES} files")
                if file_fd is None:
                    tar.addfile(_info(name, b"5", 0o755))  # tarfile.DIRTYPE
                    continue
                data = _read_at_most(file_fd, MAX_STATE_SIZE - size, name)
                size += len(data)
                entry = _info(name, b"0", 0o755 if os.fstat(file_fd).st_mode & 0o111 else 0o644)  # REGTYPE
                entry.size = len(data)
                tar.addfile(entry, io.BytesIO(data))
    except BaseException:
        os.unlink(path)
        raise
    finally:
        os.close(fd)
    return path


def _read_at_most(fd: int, budget: int, name: str) -> bytes:
    chunks, size = [], 0
    while chunk := os.read(fd, 1 << 20):
        size += len(chunk)
        if size > budget:
            raise TooMuch(f"they are over {format_size(MAX_STATE_SIZE)} (at {name})")
        chunks.append(chunk)
    return b"".join(chunks)


def _info(name: str, kind: bytes, mode: int):
    import tarfile

    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, 0, 0, 0
    return info


# ---------------------------------------------------------------- artifacts


@dataclass(frozen=True)
class ArtifactFile:
    name: str  # relative, with `/` between directories
    size: int
    stream: BinaryIO  # open on the file; read it before the next one is given


def artifact_name_problem(name: str) -> str | None:
    """Why `name` cannot be an artifact's name, or None."""
    if not name or len(name.encode("utf-8", "surrogateescape")) > 1024:
        return "names are 1 to 1,024 bytes"
    if _CONTROL.search(name):
        return "names have no control characters or backslashes"
    parts = name.split("/")
    if any(part in ("", ".", "..") or len(part.encode("utf-8", "surrogateescape")) > 255 for part in parts):
        return "each part of a name is 1 to 255 bytes, not . or .."
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "names are UTF-8"
    return None


def artifact_files(staging: str, skipped: list[str]) -> Iterator[ArtifactFile]:
    """The files the step left in `$ARTIFACTS_DIR` (moved to `staging`), each open while it is the caller's turn.
    Names that cannot be artifacts' are added to `skipped` with the reason."""
    fd = _open_root(Path(staging) / "files")
    try:
        count = 0
        for name, file_fd in _walk(fd, "", 0):
            if file_fd is None:
                continue
            problem = artifact_name_problem(name)
            if problem:
                skipped.append(f"{name!r}: {problem}")
                continue
            count += 1
            if count > MAX_ARTIFACTS:
                raise ValueError(f"a step may leave at most {MAX_ARTIFACTS} artifacts")
            with os.fdopen(os.dup(file_fd), "rb") as stream:
                yield ArtifactFile(name, os.fstat(file_fd).st_size, stream)
    except TooMuch as exc:
        raise ValueError(str(exc)) from None
    finally:
        os.close(fd)


# ---------------------------------------------------------------- a pod's upload


def unpack_out(archive: Path, out_dir: Path, budget: int, skipped: list[str]) -> None:
    """What a pod's step left (`state-out/` and `artifacts/` of its out directory, as a gzipped tar its sidecar
    sent) unpacked into the fresh `out_dir`, as if the step had written it here: directories and regular files
    only (anything else is added to `skipped` with the reason), names checked, at most `budget` bytes and the
    files a step may leave. Raises TooMuch past a limit, ValueError on a broken archive."""
    import tarfile
    import zlib

    make_out_dirs(out_dir, state=False)
    roots = (OUT_DIRS[STATE_OUT_ENV], OUT_DIRS[ARTIFACTS_ENV])
    size, count = 0, 0
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for member in tar:
                name = member.name.removeprefix("./").rstrip("/")
                root, _, rest = name.partition("/")
                if name in roots:
                    continue
                problem = None if root in roots else "outside $STATE_OUT_DIR and $ARTIFACTS_DIR"
                problem = problem or artifact_name_problem(rest)
                if not problem and not (member.isdir() or member.isreg()):
                    problem = "not a regular file or directory"
                if problem:
                    skipped.append(f"{name!r}: {problem}")
                    continue
                count += 1
                if count > MAX_STATE_FILES + MAX_ARTIFACTS:
                    raise TooMuch(f"they are more than {MAX_STATE_FILES + MAX_ARTIFACTS} files")
                target = out_dir / root / rest
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                size += member.size
                if size > budget:
                    raise TooMuch(f"they are over {format_size(budget)} (at {name})")
                target.parent.mkdir(parents=True, exist_ok=True)
                source = tar.extractfile(member)
                if source is None:  # a regular member always has its data
                    raise ValueError(f"no data for {name}")
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                with source, os.fdopen(os.open(target, flags, 0o755 if member.mode & 0o111 else 0o644), "wb") as out:
                    shutil.copyfileobj(source, out, 1 << 20)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"the archive is broken: {exc}") from None


def remove_staging(staging: str | None) -> None:
    if staging:
        shutil.rmtree(staging, ignore_errors=True)
