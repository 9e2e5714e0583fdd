"""Durations as workflows write them: `15s`, `5m`, `1h30m`, `24h`, `7d` or integer seconds."""

from __future__ import annotations

import re

__all__ = ["DurationError", "format_duration", "parse_duration"]

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")

EXAMPLES = "15s, 5m, 1h30m, 24h, 7d or a number of seconds such as 300"


class DurationError(ValueError):
    pass


def parse_duration(value) -> float:
    """Return seconds. Raises DurationError with a message that shows valid forms."""
    if isinstance(value, bool):
        raise DurationError(f"expected a duration ({EXAMPLES}), got a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise DurationError(f"a duration cannot be negative, got {value}")
        return float(value)
    if not isinstance(value, str):
        raise DurationError(f"expected a duration ({EXAMPLES}), got {type(value).__name__}")
    text = value.strip().replace(" ", "")
    if text.isascii() and text.isdigit():
        return float(text)
    if not text or not _WHOLE.fullmatch(text):
        raise DurationError(f"{value!r} is not a duration; write it like {EXAMPLES}")
    return sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))


def format_duration(seconds: float | None) -> str:
    """Short human form: 850ms, 12s, 4m32s, 1h05m, 2d3h."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    if seconds < 60:
        if seconds < 10 and seconds != int(seconds):
            return f"{seconds:.1f}s"
        return f"{round(seconds)}s"
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s"
