"""Cron expressions (5 fields, or 6 with seconds first) and time zones."""
from __future__ import annotations

import re
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

__all__ = ["cron_problem", "timezone_problem", "next_fire", "CRON_HINT"]

CRON_HINT = ("5 fields: minute hour day-of-month month day-of-week (e.g. \"0 2 * * *\"), "
             "or 6 with seconds first (e.g. \"*/10 * * * * *\")")
_FIELDS = [("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day-of-month", 1, 31),
           ("month", 1, 12), ("day-of-week", 0, 7)]
_NUMBER = re.compile(r"\d+")


def _layout(count: int):
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


def next_fire(expression: str, after: datetime, timezone: str = "UTC") -> datetime:
    """The first fire time strictly after `after`, as an aware datetime in `timezone`."""
    zone = ZoneInfo(timezone)
    start = after.astimezone(zone) if after.tzinfo else after.replace(tzinfo=zone)
    it = croniter(expression, start, second_at_beginning=len(expression.split()) == 6)
    return it.get_next(datetime)
