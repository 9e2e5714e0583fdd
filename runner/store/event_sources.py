"""What Redis remembers of each event source trigger (tended by runner/service/event_sources.py), as the API and
the UI show it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..spec.model import TriggerType
from . import keys

if TYPE_CHECKING:
    from ..runs.service import Service
    from ..spec.model import Trigger

__all__ = ["SOURCE_SEP", "SourceState", "source_states"]

SOURCE_SEP = "\x1f"  # between workspace and trigger in keys.EVENT_SOURCES


@dataclass(frozen=True)
class SourceState:
    """What Redis remembers of one event source (the hash keys.event_source)."""

    generation: int = 0  # consumer runs started so far
    run: str | None = None  # the current (or last) consumer run
    cursor: str = "0-0"  # the consumer log's last line read
    delivered: int = 0  # target runs started
    refused: int = 0  # OUTPUT lines that started nothing (not JSON, not an object, inputs refused)
    last_error: str | None = None
    stopped: str | None = None  # why the consumer is not running and will not start by itself
    recycle: bool = False  # Strom stopped the consumer (its log's size, a pause): the next starts at once

    @classmethod
    def load(cls, redis: Any, workspace: str, name: str) -> SourceState:
        return cls.of(cast("dict[str, str]", redis.hgetall(keys.event_source(workspace, name))))

    @classmethod
    def of(cls, raw: dict[str, str]) -> SourceState:
        return cls(
            generation=int(raw.get("generation", 0)),
            run=raw.get("run") or None,
            cursor=raw.get("cursor", "0-0"),
            delivered=int(raw.get("delivered", 0)),
            refused=int(raw.get("refused", 0)),
            last_error=raw.get("last_error") or None,
            stopped=raw.get("stopped") or None,
            recycle=raw.get("recycle") == "1",
        )


def source_states(service: Service, workspace: str, triggers: Iterable[Trigger]) -> dict[str, dict[str, Any]]:
    """The state of each event source among `triggers` of `workspace`, for the API and the UI."""
    out: dict[str, dict[str, Any]] = {}
    for name in (t.name for t in triggers if t.type is TriggerType.EVENT_SOURCE):
        state = SourceState.load(service.redis, workspace, name)
        consumer = service.runs.load(state.run) if state.run else None
        in_flight = service.redis.scard(keys.event_source_runs(workspace, name))
        out[name] = {
            "consumer_run": state.run,
            "consumer_status": consumer.status.value if consumer else None,
            "generation": state.generation,
            "delivered": state.delivered,
            "refused": state.refused,
            "in_flight": in_flight,
            "last_error": state.last_error,
            "stopped": state.stopped,
        }
    return out
