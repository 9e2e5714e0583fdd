"""Task state on the worker: the files a step starts from, fetched before it runs, and what it wrote, stored
after it succeeded (docs/task-state.md). What the step wrote travels to the scheduler in its `StepFinished`
report, which keeps the snapshot in the transaction of the step's end."""

from __future__ import annotations

import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..errors import StepSetupError
from ..executors.base import StepResult, executor_key
from ..executors.outfiles import MAX_STATE_ARCHIVE
from ..store.connection import patiently
from ..store.objects import state_object

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["FILE_EXECUTORS", "PATIENCE", "POD_EXECUTOR", "StepState"]

POD_EXECUTOR = "kubernetes"
FILE_EXECUTORS = frozenset({"local", "docker", POD_EXECUTOR})  # the executors giving $STATE_DIR and $STATE_OUT_DIR
PATIENCE = 30.0  # seconds a step's start or end waits for Redis (the task state it starts from, artifact sizes)


class StepState:
    def __init__(self, service: Service):
        self.service = service

    @contextmanager
    def prepared(self, work: StepWork, cancel: threading.Event) -> Iterator[StepWork]:
        """`work` with `state_archive`: the files of the task state it starts from, on this machine."""
        key, executor = None, executor_key(work)
        if not work.untrusted and executor in FILE_EXECUTORS:
            key = work.state_files if work.state_files is not None else self._newest_files(work, cancel)
        if executor == POD_EXECUTOR:  # a pod fetches the files itself, with a token for the key
            yield replace(work, state_files=key or "")
            return
        if not key:
            yield work
            return
        scratch = Path(tempfile.mkdtemp(prefix="strom-state-in-"))
        try:
            yield replace(work, state_archive=str(self.service.worker_objects.fetch(key, scratch)))
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _newest_files(self, work: StepWork, cancel: threading.Event) -> str | None:
        try:
            newest = patiently(lambda: self.service.task_states.latest(work.workspace, work.task), PATIENCE, cancel)
        except Exception as exc:
            raise StepSetupError(f"the task state could not be read: {exc}") from exc
        return (newest or {}).get("files")

    def kept(self, work: StepWork, result: StepResult) -> dict[str, Any] | None:
        """What the step wrote as task state, its files stored: for its StepFinished report (None: nothing)."""
        try:
            if result.status is not StepStatus.SUCCEEDED or work.untrusted:
                return None
            if result.state is None and not result.state_files:
                return None
            snapshot = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-state:{work.job_id}:{work.step}:{work.attempt}").hex
            files, size = None, 0
            if result.state_files:
                files = state_object(snapshot)
                with open(result.state_files, "rb") as archive:
                    size = self.service.worker_objects.put_stream(files, archive, MAX_STATE_ARCHIVE)
            return {"id": snapshot, "data": result.state, "files": files, "size": size}
        finally:
            if result.state_files:
                Path(result.state_files).unlink(missing_ok=True)
