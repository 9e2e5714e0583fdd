"""Which cron tick is due: pure decisions over a trigger, the last fire and now."""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from croniter import croniter

__all__ = ["due_fire", "ticks_between", "next_fire_time"]


def _iter(expression: str, start: datetime) -> croniter:
    return croniter(expression, start, second_at_beginning=len(expression.split()) == 6)


def due_fire(expression: str, tz: str, last: float, now: float, catch_up: str = "latest",
             tolerance: float = 5.0) -> float | None:
    """The fire time to act on now, if any: the most recent tick in (last, now].

    With catch_up "none", a tick more than `tolerance` seconds old is not fired (it was missed
    while nothing was running); the caller still records it as handled.
    """
    zone = ZoneInfo(tz)
    moment = datetime.fromtimestamp(int(now) + 0.5, zone)  # ticks fall on whole seconds: include `now`
    previous = _iter(expression, moment).get_prev(datetime).timestamp()
    if previous <= last:
        return None
    if catch_up == "none" and now - previous > tolerance:
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
