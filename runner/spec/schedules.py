"""Schedules in English: `schedule: "every day at 04:00"` becomes a cron expression, and every cron
expression can be said in English (`describe`).

The grammar (words in any case; commas and `and` separate lists):

    every minute | every N minutes
    every hour | every N hours                       (on the hour)
    every day [at TIME]                              (TIME defaults to midnight)
    every weekday | every weekend [at TIME]
    every DAY[, DAY and DAY] [at TIME]               (monday ... sunday, or mon ... sun)
    every month [on the Nth | on day N] [at TIME]    (N: 1 to 28, so that every month has it)

TIME is `HH:MM` (24-hour), `4am`, `4:30pm`, `noon` or `midnight`.
"""

from __future__ import annotations

import re

__all__ = ["GRAMMAR_HINT", "ScheduleError", "describe", "to_cron"]

GRAMMAR_HINT = (
    'write e.g. "every 15 minutes", "every day at 04:00", "every weekday at 9am", '
    '"every monday and thursday at 18:30" or "every month on the 1st at 02:00"'
)
_DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
_DAY_NUMBERS = {**{d: i for i, d in enumerate(_DAYS)}, **{d[:3]: i for i, d in enumerate(_DAYS)}}
_CLOCK = re.compile(r"(\d{1,2})(?::(\d{2}))?(am|pm)?")
_ORDINAL = re.compile(r"(\d{1,2})(st|nd|rd|th)?")
_MAX_WORDS = 40


class ScheduleError(ValueError):
    """What is wrong with a schedule; `word` is the word that is wrong."""

    def __init__(self, word: str, message: str):
        super().__init__(message)
        self.word = word


def _words(text: str) -> list[str]:
    return text.lower().replace(",", " , ").split()


def _time(words: list[str]) -> tuple[int, int]:
    """(minute, hour) of the words after `at`."""
    if len(words) != 1:
        word = words[1] if len(words) > 1 else "at"
        raise ScheduleError(word, f"expected one time after 'at', got {' '.join(words) or 'nothing'!r}")
    word = words[0]
    if word in ("noon", "midnight"):
        return 0, 12 if word == "noon" else 0
    match = _CLOCK.fullmatch(word)
    if match is None or (match.group(2) is None and match.group(3) is None):
        raise ScheduleError(word, f"{word!r} is not a time; write 04:00, 16:30, 4am, 4:30pm, noon or midnight")
    hour, minute, half = int(match.group(1)), int(match.group(2) or 0), match.group(3)
    if half:
        if not 1 <= hour <= 12:
            raise ScheduleError(word, f"{word!r}: an am/pm hour is 1 to 12")
        hour = hour % 12 + (12 if half == "pm" else 0)
    if hour > 23 or minute > 59:
        raise ScheduleError(word, f"{word!r} is not a time of day (00:00 to 23:59)")
    return minute, hour


def _count(word: str, unit: str, most: int) -> int:
    if not word.isdigit() or not 1 <= int(word) <= most:
        raise ScheduleError(word, f"{word!r}: every N {unit}s needs N from 1 to {most}")
    return int(word)


def _days(words: list[str]) -> str:
    numbers = []
    for word in words:
        if word in (",", "and"):
            continue
        name = word[:-1] if word.endswith("s") and word[:-1] in _DAY_NUMBERS else word  # "mondays"
        if name not in _DAY_NUMBERS:
            raise ScheduleError(word, f"{word!r} is not a day; write monday ... sunday, weekday or weekend")
        numbers.append(_DAY_NUMBERS[name])
    if not numbers:
        raise ScheduleError("every", "no day after 'every'")
    return ",".join(str(n) for n in sorted(set(numbers)))


def _day_of_month(words: list[str]) -> int:
    rest = [w for w in words if w not in ("the", "day")]
    match = _ORDINAL.fullmatch(rest[0]) if len(rest) == 1 else None
    if match is None:
        word = rest[0] if rest else "on"
        raise ScheduleError(word, f"expected a day of the month after 'on' (the 1st, day 15), got {' '.join(words)!r}")
    day = int(match.group(1))
    if not 1 <= day <= 28:
        raise ScheduleError(rest[0], f"{rest[0]!r}: the day of the month must be 1 to 28, so that every month has it")
    return day


def to_cron(text: str) -> str:
    """The cron expression of a schedule written in the grammar above; ScheduleError names what is wrong."""
    words = _words(text)
    if len(words) > _MAX_WORDS:
        raise ScheduleError(words[_MAX_WORDS], f"a schedule has at most {_MAX_WORDS} words")
    if not words or words[0] != "every":
        raise ScheduleError(words[0] if words else "", f"a schedule starts with 'every' ({GRAMMAR_HINT})")
    head, time_words = words[1:], []
    if "at" in head:
        at = head.index("at")
        head, time_words = head[:at], head[at + 1 :]
        if not time_words:
            raise ScheduleError("at", "no time after 'at'")
    if not head:
        raise ScheduleError("every", f"what every? ({GRAMMAR_HINT})")
    if head[0].isdigit():
        if len(head) != 2 or head[1] not in ("minutes", "hours", "minute", "hour"):
            word = head[1] if len(head) > 1 else head[0]
            raise ScheduleError(word, f"{word!r}: write every N minutes or every N hours")
        if time_words:
            raise ScheduleError("at", f"'every {head[0]} {head[1]}' takes no time")
        if head[1].startswith("minute"):
            return f"*/{_count(head[0], 'minute', 59)} * * * *"
        return f"0 */{_count(head[0], 'hour', 23)} * * *"
    if head in (["minute"], ["hour"]):
        if time_words:
            raise ScheduleError("at", f"'every {head[0]}' takes no time")
        return "* * * * *" if head == ["minute"] else "0 * * * *"
    minute, hour = _time(time_words) if time_words else (0, 0)
    if head == ["day"]:
        return f"{minute} {hour} * * *"
    if head in (["weekday"], ["weekdays"]):
        return f"{minute} {hour} * * 1-5"
    if head in (["weekend"], ["weekends"]):
        return f"{minute} {hour} * * 0,6"
    if head[0] == "month":
        day = _day_of_month(head[2:]) if len(head) > 1 and head[1] == "on" else 1
        if len(head) > 1 and head[1] != "on":
            raise ScheduleError(head[1], f"{head[1]!r}: write 'every month on the 1st'")
        return f"{minute} {hour} {day} * *"
    return f"{minute} {hour} * * {_days(head)}"


def describe(cron: str) -> str:
    """The cron expression in English ("At 04:30, Monday through Friday"); the expression itself if it
    cannot be said."""
    from cron_descriptor import ExpressionDescriptor, Options

    options = Options()
    options.use_24hour_time_format = True
    options.verbose = False
    try:
        return str(ExpressionDescriptor(cron, options).get_description())
    except Exception:  # noqa: BLE001 - any expression croniter takes is valid; a description is a nicety
        return cron
