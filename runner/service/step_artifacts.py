"""Artifacts on the worker: the files a succeeded step left in `$ARTIFACTS_DIR`, stored one object each before its
`StepFinished` report, which lists them for the run (docs/artifacts.md). A file over `artifacts.max_file_size`,
or a run over `artifacts.max_run_size`, fails the step saying so; what it stored is deleted again."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from ..errors import StepSetupError, StromError
from ..executors.base import StepResult
from ..executors.outfiles import artifact_files, remove_staging
from ..sizes import format_size
from ..store import keys
from ..store.connection import patiently
from ..store.objects import artifact_object
from .step_state import PATIENCE

if TYPE_CHECKING:
    from ..engine.work import StepWork
    from ..executors.base import LogSink
    from ..runs.service import Service

__all__ = ["StepArtifacts", "content_type"]

_BYTES_TTL = 90 * 86400  # the run's artifact byte count outlives no run by much (retention deletes it with the run)


def content_type(name: str) -> str:
    import mimetypes  # reads the system's type tables: only a step that keeps artifacts pays for it

    guessed, _ = mimetypes.guess_type(name, strict=False)
    if name.lower().endswith((".md", ".markdown")):
        return "text/markdown"
    return guessed or "application/octet-stream"


class StepArtifacts:
    def __init__(self, service: Service):
        self.service = service

    def stored(self, work: StepWork, result: StepResult, logs: LogSink) -> list[dict[str, Any]] | None:
        """Store what the step left; the list for its report (None: nothing). Raises StromError when a limit is
        passed or storing fails; nothing of this step's is kept then."""
        if not result.artifacts_dir:
            return None
        config, objects = self.service.config, self.service.worker_objects
        counter = keys.artifact_bytes(work.job_id)
        stored: list[dict[str, Any]] = []
        reserved = 0
        skipped: list[str] = []
        try:
            for file in artifact_files(result.artifacts_dir, skipped):
                if file.size > config.artifacts_max_file:
                    raise StepSetupError(
                        f"artifact {file.name} is {format_size(file.size)}, over artifacts.max_file_size "
                        f"({format_size(config.artifacts_max_file)})"
                    )
                total = patiently(partial(self._count, counter, file.size), PATIENCE)
                reserved += file.size
                if total > config.artifacts_max_run:
                    raise StepSetupError(
                        f"the run's artifacts would be {format_size(total)}, over artifacts.max_run_size "
                        f"({format_size(config.artifacts_max_run)}) with {file.name}"
                    )
                key = artifact_object(work.job_id, work.step, work.attempt, file.name)
                size = objects.put_stream(key, file.stream, config.artifacts_max_file)
                stored.append({"name": file.name, "key": key, "size": size, "content_type": content_type(file.name)})
        except (StromError, ValueError) as exc:
            self._forget(stored, counter, reserved)
            raise StepSetupError(f"storing the artifacts failed: {exc}") from None
        except BaseException:
            self._forget(stored, counter, reserved)
            raise
        finally:
            remove_staging(result.artifacts_dir)
        for line in skipped:
            logs.line("strom", f"not kept as an artifact: {line}")
        if stored:
            logs.line("strom", f"kept {len(stored)} artifact(s), {format_size(sum(a['size'] for a in stored))}")
        return stored or None

    def _count(self, counter: str, size: int) -> int:
        """The run's artifact bytes with `size` more (a count is only ever too high after an outage, which
        refuses, never loses)."""
        with self.service.redis.pipeline(transaction=True) as pipe:
            pipe.incrby(counter, size)
            pipe.expire(counter, _BYTES_TTL)
            total, _ = pipe.execute()
        return int(total)

    def _forget(self, stored: list[dict[str, Any]], counter: str, reserved: int) -> None:
        try:
            if reserved:
                self.service.redis.decrby(counter, reserved)
        except Exception:  # noqa: BLE001 - an outage: the count is only ever too high, which refuses, never loses
            pass
        for artifact in stored:
            try:
                self.service.worker_objects.delete(artifact["key"])
            except Exception:  # noqa: BLE001 - storage unreachable: the object is orphaned, never read
                pass
