"""The engine: one function from (run state, event, now) to (new state, commands).

Every rule of a run lives in this package: transitions.py says which event is legal when and which
handler applies it; readiness.py and loops.py then start what became ready; outcome.py decides the
run's own status, output and hooks. No I/O: shells (the CLI runner, the RQ service) apply the
commands and feed back events. An illegal event raises EngineError and changes nothing.
"""

from __future__ import annotations

from typing import NamedTuple

from .children import MAX_DEPTH
from .commands import Command
from .context import RunContext
from .deadlines import LOST_GRACE, wake_at
from .draft import Draft
from .events import Event
from .loops import MAX_FOR_EACH
from .outcome import conclude
from .readiness import settle
from .state import RunState
from .transitions import handle

__all__ = ["LOST_GRACE", "MAX_DEPTH", "MAX_FOR_EACH", "Decision", "advance"]


class Decision(NamedTuple):
    state: RunState
    commands: tuple[Command, ...]
    wake_at: float | None  # when to send Tick next (deadlines), or None


def advance(state: RunState, event: Event, ctx: RunContext, now: float) -> Decision:
    """Apply `event` to `state`. Raises EngineError (leaving `state` untouched) if it is illegal."""
    draft = Draft(state, ctx, now)
    handle(draft, event)
    settle(draft)
    conclude(draft)
    new = draft.view()
    return Decision(new, tuple(draft.commands), wake_at(new))
