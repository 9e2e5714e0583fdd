"""The worker's side of pods' task state and artifacts (runner/executors/kubernetes.py): object tokens that let
a pod read the task state files its step starts from and send what its step left, through the web process, and
reading that back. The web process stores what a pod sends like any object (webhooks/api/objects.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..executors.outfiles import MAX_STATE_SIZE
from ..executors.pods import PodFiles
from ..store import object_tokens
from ..store.objects import pod_files_object

if TYPE_CHECKING:
    from ..engine.work import StepWork
    from ..runs.service import Service

__all__ = ["PodFileAccess", "pod_base_url"]

_NO_TIMEOUT = 7 * 86400.0  # how long an upload token of a step without timeout lasts


def pod_base_url(config) -> tuple[str, str]:
    """The web process's URL as pods reach it, and the key that signs their tokens; ValueError saying why there
    are none."""
    base = (config.worker_server_url or config.public_url).rstrip("/")
    if not config.worker_token:
        raise ValueError("pods need workers.token in the configuration (it signs the tokens pods use)")
    if urlsplit(base).hostname in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"pods need a public_url (or workers.server_url) they can reach, not {base}")
    return base, config.worker_token


class PodFileAccess:
    def __init__(self, service: Service):
        self.service = service
        self.budget = MAX_STATE_SIZE + service.config.artifacts_max_run

    def access(self, work: StepWork) -> PodFiles | str:
        config = self.service.config
        try:
            base, secret = pod_base_url(config)
        except ValueError as exc:
            return f"{exc} (or kubernetes.files: false)"
        key = pod_files_object(work.job_id, work.step, work.attempt)
        pending = config.kubernetes.pending_timeout
        lasts = pending + (work.timeout or _NO_TIMEOUT) + 600
        files = PodFiles(
            key=key,
            upload_url=f"{base}/api/objects/{key}",
            upload_token=object_tokens.issue(secret, "put", key, lasts),
        )
        state = work.state_files if not work.untrusted else None
        if state:  # resolved by StepState.prepared
            token = object_tokens.issue(secret, "get", state, pending + 300)
            files = replace(files, state_url=f"{base}/api/objects/{state}", state_token=token)
        return files

    def fetch(self, key: str, scratch: Path) -> Path:
        return self.service.worker_objects.fetch(key, scratch)

    def forget(self, key: str) -> None:
        self.service.worker_objects.delete(key)
