"""Rendered steps for executor tests, written as the fields a test cares about."""

from __future__ import annotations

from typing import Any

from runner.engine.work import StepWork


def step_work(job_id: str = "job1", step: str = "step", attempt: int = 1, kind: str = "script", **fields: Any):
    """A StepWork whose payload fields (script, url, image, ...) sit beside the others, as in StepWork's flat form."""
    return StepWork.from_dict({"job_id": job_id, "step": step, "attempt": attempt, "kind": kind, **fields})
