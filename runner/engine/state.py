"""The state of one run (a job) and its steps: plain frozen values, serialisable to JSON."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .status import RunStatus, StepStatus

__all__ = ["RunState", "StepRun", "changed_steps", "instance_name", "split_instance"]


def instance_name(step: str, index: int) -> str:
    return f"{step}[{index}]"


def split_instance(name: str) -> tuple[str, int | None]:
    if name.endswith("]") and "[" in name:
        base, _, index = name[:-1].rpartition("[")
        if index.isascii() and index.isdigit():
            return base, int(index)
    return name, None


@dataclass(frozen=True, slots=True)
class StepRun:
    """One step of a run; a for_each step has a placeholder run plus one run per item ("name[i]")."""

    name: str
    step: str
    index: int | None = None
    status: StepStatus = StepStatus.PENDING
    attempt: int = 0
    output: Any = None
    error: str | None = None
    skip_reason: str | None = None
    blocked: bool = False  # skipped because something upstream failed (not by choice)
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    retry_at: float | None = None
    deadline: float | None = None
    items: tuple[Any, ...] | None = None  # a for_each placeholder's items
    item: Any = None  # a for_each instance's item
    child_job: str | None = None
    approval: Mapping[str, Any] | None = None
    exit_code: int | None = None
    worker: str | None = None
    summary: str | None = None  # of the latest attempt that wrote one
    handed_back: int = 0  # attempts given back by workers shutting down (not counted as tries)
    resumed: int = 0  # attempts that went on with the answer to a question the step asked (not tries either)
    answers: list[dict[str, Any]] | None = None  # the questions the step asked, answered: {question, answer, by, at}
    artifacts: list[dict[str, Any]] | None = None  # files the succeeded attempt left: {name, key, size, content_type}

    @property
    def is_instance(self) -> bool:
        return self.index is not None

    @property
    def is_placeholder(self) -> bool:
        return self.items is not None

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON takes it (the values are shared, not copied: a StepRun never changes)."""
        data = {name: getattr(self, name) for name in _STEP_ORDER}
        data["status"] = self.status.value
        data["items"] = list(self.items) if self.items is not None else None
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRun:
        values = {k: v for k, v in data.items() if k in _STEP_FIELDS}
        values["status"] = StepStatus(values.get("status", "pending"))
        if values.get("items") is not None:
            values["items"] = tuple(values["items"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class RunState:
    id: str
    workspace: str
    task: str
    created_at: float
    inputs: Mapping[str, Any] = field(default_factory=dict)
    steps: Mapping[str, StepRun] = field(default_factory=dict)
    status: RunStatus = RunStatus.QUEUED
    begun: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    deadline: float | None = None
    depth: int = 0
    parent_job: str | None = None
    parent_step: str | None = None
    source: str = "manual"
    trigger: str | None = None
    event: Mapping[str, Any] | None = None
    git: Mapping[str, Any] | None = None
    commit: str | None = None
    definitions: str | None = None  # content hash of the .strom files the run was created from
    snapshot: str | None = None  # where its steps find the workspace
    trusted: bool = True  # False: an untrusted pull request's run (no secrets unless the workspace allows)
    group: str | None = None  # concurrency group (trigger and branch or pull request)
    attempt: int = 1
    retry_of: str | None = None
    cancel_requested: bool = False
    cancel_reason: str | None = None
    timed_out: bool = False
    output: Any = None
    error: str | None = None
    task_state: Mapping[str, Any] | None = None  # the newest task state a step of this run wrote

    @property
    def is_hook(self) -> bool:
        return self.source == "hook"

    def step(self, name: str) -> StepRun:
        return self.steps[name]

    def head(self) -> dict[str, Any]:
        """Everything but the steps, as JSON takes it."""
        data = {name: getattr(self, name) for name in _RUN_FIELDS}
        data["status"] = self.status.value
        data["inputs"] = dict(self.inputs)
        return data

    def to_dict(self) -> dict[str, Any]:
        return {**self.head(), "steps": [run.to_dict() for run in self.steps.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], steps: Mapping[str, StepRun] | None = None) -> RunState:
        """The run `data` describes; `steps`, when given, are its steps already built (`data["steps"]` is then
        not read)."""
        values = {k: v for k, v in data.items() if k in _RUN_KNOWN}
        values["status"] = RunStatus(values.get("status", "queued"))
        values["steps"] = (
            steps if steps is not None else {s["name"]: StepRun.from_dict(s) for s in data.get("steps", [])}
        )
        return cls(**values)


_STEP_ORDER = tuple(f.name for f in fields(StepRun))
_STEP_FIELDS = frozenset(_STEP_ORDER)
_RUN_FIELDS = tuple(f.name for f in fields(RunState) if f.name != "steps")
_RUN_KNOWN = frozenset(_RUN_FIELDS)


def changed_steps(old: RunState | None, new: RunState) -> Iterator[tuple[str, StepRun | None, StepRun]]:
    """(name, before, after) of every step whose status or attempt differs from `old` (all of them if None)."""
    before = old.steps if old is not None else {}
    for name, run in new.steps.items():
        prev = before.get(name)
        if prev is None or prev.status is not run.status or prev.attempt != run.attempt:
            yield name, prev, run
