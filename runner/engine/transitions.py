"""Which event a run accepts when, and which handler applies it: the engine's dispatch, in two tables.

Read the tables to know what is legal; read a handler to know what it then does. A finished run
accepts nothing. An event about a step is legal only while the step is in a status its row lists,
and only if it is about what its row says (the step's current attempt, its child run). Handlers
refuse only what the tables cannot see: a second Start or Cancel, a second approval by one person,
a StepFinished whose status is not an end. Every refusal raises EngineError; the old state stands.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from ..errors import EngineError
from . import approvals, deadlines, lifecycle, reports
from .draft import Draft
from .events import (
    ApprovalDecision,
    Cancel,
    ChildFinished,
    Event,
    Start,
    StepAbandoned,
    StepAsked,
    StepFinished,
    StepStarted,
    Tick,
)
from .rules import Approval, Attempt, ChildRun, StepRule, WorkerAttempt
from .status import StepStatus

__all__ = ["RUN_EVENTS", "STEP_EVENTS", "handle"]

S = StepStatus

# Events about the run as a whole: legal in any unfinished run. (Any: each handler takes its key's type.)
RUN_EVENTS: Final[Mapping[type[Event], Callable[[Draft, Any], None]]] = {
    Start: lifecycle.on_start,
    Cancel: lifecycle.on_cancel,
    Tick: deadlines.on_tick,
}

# Events about one step. (Any: each rule takes its key's type.)
# fmt: off
STEP_EVENTS: Final[Mapping[type[Event], StepRule[Any]]] = {
    #                          handler                    legal while the step is  and about its
    StepStarted:      StepRule(reports.on_started,        {S.QUEUED},              Attempt("cannot start")),
    StepFinished:     StepRule(reports.on_finished,       {S.QUEUED, S.RUNNING},   WorkerAttempt("cannot finish")),
    StepAbandoned:    StepRule(reports.on_abandoned,      {S.QUEUED, S.RUNNING},   WorkerAttempt("is not in flight")),
    StepAsked:        StepRule(approvals.on_asked,        {S.RUNNING},             WorkerAttempt("cannot ask")),
    ChildFinished:    StepRule(reports.on_child_finished, {S.RUNNING},             ChildRun()),
    ApprovalDecision: StepRule(approvals.on_decision,     {S.WAITING},             Approval()),
}
# fmt: on


def handle(d: Draft, event: Event) -> None:
    """Apply `event` with its handler, or raise EngineError if the run cannot accept it now."""
    if d.old.status.terminal:
        raise EngineError(f"run {d.old.id} has already finished ({d.old.status.value})")
    kind = type(event)
    if kind in RUN_EVENTS:
        RUN_EVENTS[kind](d, event)
    elif kind in STEP_EVENTS:
        STEP_EVENTS[kind].apply(d, event)
    else:
        raise EngineError(f"unknown event {kind.__name__}")
