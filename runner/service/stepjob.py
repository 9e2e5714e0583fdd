"""The function an RQ job of a step names: run one claimed step on the worker whose runner executes the job."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..engine.work import StepWork
from ..store.rqrunner import current_host

__all__ = ["run_step"]


def run_step(work: Mapping[str, Any]) -> None:
    """Run `work` on this thread's worker (runner/service/worker.py) and return once Redis has its end:
    until then the job's execution stays in RQ's started registry, which keeps the attempt from being
    taken for lost."""
    current_host().run_claimed(StepWork.from_dict(work))
