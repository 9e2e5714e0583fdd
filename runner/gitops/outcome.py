"""What processing one repository event came to."""
from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Outcome"]


@dataclass
class Outcome:
    status: str  # done | ignored | waiting | failed
    reason: str | None = None
    runs: list[str] = field(default_factory=list)
    error: str | None = None
    reply: str | None = None  # what to answer in the pull request, when it is more than the reason
    quiet: bool = False  # no reply (a word that may be meant for another bot, from someone without access)
