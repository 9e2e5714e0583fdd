"""The function an RQ job of a step names: run one rendered step on this worker."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.work import StepWork

__all__ = ["current_worker", "run_step", "set_current_worker"]

_current = None


def current_worker():
    return _current


def set_current_worker(worker) -> None:
    global _current
    _current = worker


def run_step(work: Mapping[str, Any]) -> None:
    """Run `work` with the worker of this process (a plain RQ worker uses a default one)."""
    worker = _current
    if worker is None:
        from ..config import load_config
        from ..runs.service import Service
        from .worker import Worker

        worker = Worker(Service(load_config()), abilities=("script",))
        set_current_worker(worker)
    worker.run_work(StepWork.from_dict(work))
