"""What processing one repository event came to."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Outcome", "OutcomeStatus"]


class OutcomeStatus(StrEnum):
    """How processing a repository event ended (stored as the event's `status`, beside `queued`).
    A str: it compares, prints and serialises as its value."""

    DONE = "done"
    IGNORED = "ignored"
    WAITING = "waiting"
    FAILED = "failed"


@dataclass
class Outcome:
    status: OutcomeStatus
    reason: str | None = None
    runs: list[str] = field(default_factory=list)
    error: str | None = None
    reply: str | None = None  # what to answer in the pull request, when it is more than the reason
    quiet: bool = False  # no reply (a word that may be meant for another bot, from someone without access)
