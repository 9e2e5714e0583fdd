"""Cron expressions (5 fields, or 6 with seconds first) and time zones: their checks, and which tick is due
(pure decisions over an expression, the last fire and now)."""

from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

from .model import CatchUp

__all__ = ["CRON_HINT", "cron_problem", "due_fire", "next_fire_time", "ticks_between", "timezone_problem"]

CRON_HINT = (
    '5 fields: minute hour day-of-month month day-of-week (e.g. "0 2 * * *"), '
    'or 6 with seconds first (e.g. "*/10 * * * * *")'
)
_FIELDS = [
    ("second", 0, 59),
    ("minute", 0, 59),
    ("hour", 0, 23),
    ("day-of-month", 1, 31),
    ("month", 1, 12),
    ("day-of-week", 0, 7),
]
_NUMBER = re.compile(r"\d+")


def _layout(count: int) -> list[tuple[str, int, int]]:
    return _FIELDS if count == 6 else _FIELDS[1:]


def _range_problem(parts: list[str]) -> str | None:
    for text, (name, low, high) in zip(parts, _layout(len(parts))):
        for chunk in text.split(","):
            base = chunk.split("/")[0]
            for number in _NUMBER.findall(base):
                if not low <= int(number) <= high:
                    return f"{name} value {number} is out of range ({low}-{high})"
    return None


def cron_problem(expression: str) -> str | None:
    parts = expression.split()
    if len(parts) not in (5, 6):
        return f"cron expression {expression!r} has {len(parts)} field(s)"
    try:
        croniter(expression, datetime(2026, 1, 1), second_at_beginning=len(parts) == 6)
    except (CroniterError, ValueError, KeyError, TypeError) as exc:
        detail = _range_problem(parts) or str(exc).replace(f"[{expression}]", "").strip(" ,")
        return f"cron expression {expression!r} is invalid: {detail}"
    return None


def timezone_problem(name: str) -> str | None:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r}"
    return None


def _iter(expression: str, start: datetime) -> croniter:
    return croniter(expression, start, second_at_beginning=len(expression.split()) == 6)


def due_fire(
    expression: str, tz: str, last: float, now: float, catch_up: CatchUp = CatchUp.LATEST, tolerance: float = 5.0
) -> float | None:
    """The fire time to act on now, if any: the most recent tick in (last, now].

    With catch_up NONE, a tick more than `tolerance` seconds old is not fired (it was missed
    while nothing was running); the caller still records it as handled.
    """
    zone = ZoneInfo(tz)
    moment = datetime.fromtimestamp(int(now) + 0.5, zone)  # ticks fall on whole seconds: include `now`
    previous = _iter(expression, moment).get_prev(datetime).timestamp()
    if previous <= last:
        return None
    if catch_up == CatchUp.NONE and now - previous > tolerance:
        return -previous  # handled but not fired
    return previous


def ticks_between(expression: str, tz: str, last: float, now: float, limit: int = 100) -> list[float]:
    """Every tick in (last, now], oldest first (at most the newest `limit`): the ticks of a hand-over
    between schedulers, all of which are fired."""
    zone = ZoneInfo(tz)
    moment = datetime.fromtimestamp(int(now) + 0.5, zone)
    ticks: list[float] = []
    it = _iter(expression, moment)
    while len(ticks) < limit:
        tick = it.get_prev(datetime).timestamp()
        if tick <= last:
            break
        ticks.append(tick)
    return ticks[::-1]


def next_fire_time(expression: str, tz: str, after: float) -> float:
    zone = ZoneInfo(tz)
    return _iter(expression, datetime.fromtimestamp(after, zone)).get_next(datetime).timestamp()
