"""Task state from people: a snapshot uploaded through the API (`strom state TASK --upload`), to bootstrap a task
that reads its state (a certificate to renew, a cursor to start from). It becomes the task's newest snapshot,
as if a step had written it (docs/task-state.md)."""

from __future__ import annotations

import json
import shutil
import tarfile
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import InputError
from ..executors.outfiles import MAX_STATE_ARCHIVE, TooMuch, pack_dir
from ..git.untar import extract
from ..outputs import MAX_STATE_DATA
from ..store.objects import state_object

if TYPE_CHECKING:
    from .service import Service

__all__ = ["MODES", "upload_state"]

MODES = ("replace", "merge")


def upload_state(
    service: Service,
    workspace: str,
    task: str,
    data: dict[str, Any] | None,
    archive: IO[bytes] | None,
    mode: str,
    by: str,
) -> dict[str, Any]:
    """Keep a snapshot of `task`: `data` and the files of the gzipped tar `archive` (replace: exactly these;
    merge: over the newest snapshot's, data key by key, files by name). Raises InputError on a bad archive or
    data over the limits."""
    if mode not in MODES:
        raise InputError(task, {"mode": f"mode is replace or merge, not {mode!r}"})
    previous = service.task_states.latest(workspace, task) if mode == "merge" else None
    scratch = Path(tempfile.mkdtemp(prefix="strom-state-upload-"))
    try:
        files = scratch / "files"
        files.mkdir()
        if previous and previous.get("files"):
            _unpack(task, service.objects.fetch(previous["files"], scratch), files, "the newest snapshot's files")
        if archive is not None:
            spooled = scratch / "upload.tar.gz"
            with open(spooled, "wb") as out:
                shutil.copyfileobj(archive, out, 1 << 20)
            if spooled.stat().st_size:
                _unpack(task, spooled, files, "the body")
        merged = {**((previous or {}).get("data") or {}), **(data or {})} if mode == "merge" else data
        if merged is not None and len(json.dumps(merged)) > MAX_STATE_DATA:
            raise InputError(task, {"data": f"the data is over {MAX_STATE_DATA // 1024} KiB"})
        try:
            packed = pack_dir(files)
        except TooMuch as exc:
            raise InputError(task, {"files": f"the files are not kept: {exc}"}) from None
        snapshot_id = uuid.uuid4().hex
        key, size = None, 0
        if packed is not None:
            key = state_object(snapshot_id)
            try:
                with open(packed, "rb") as stream:
                    size = service.objects.put_stream(key, stream, MAX_STATE_ARCHIVE)
            finally:
                Path(packed).unlink(missing_ok=True)
        snapshot = {
            "id": snapshot_id,
            "job": None,
            "step": None,
            "created": time.time(),
            "data": merged or None,
            "files": key,
            "size": size,
            "by": by,
        }
        service.task_states.keep(workspace, task, snapshot)
        return snapshot
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _unpack(task: str, archive: Path, target: Path, what: str) -> None:
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            extract(tar, target)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise InputError(task, {"files": f"{what} is not a gzipped tar Strom can unpack: {exc}"}) from None
