"""Sizes as configurations write them: `64MiB`, `512 KiB`, `2GB`, `1000` (bytes)."""

from __future__ import annotations

import re

__all__ = ["SizeError", "format_size", "parse_size"]

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]*)")
EXAMPLES = "64MiB, 512KiB, 2GB or a number of bytes such as 1048576"


class SizeError(ValueError):
    pass


def parse_size(value) -> int:
    """Return bytes. Raises SizeError with a message that shows valid forms."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise SizeError(f"expected a size ({EXAMPLES}), got {type(value).__name__}")
    if isinstance(value, (int, float)):
        if value < 0:
            raise SizeError(f"a size cannot be negative, got {value}")
        return int(value)
    match = _SIZE.fullmatch(value.strip().lower())
    if not match or match.group(2) not in _UNITS:
        raise SizeError(f"{value!r} is not a size; write it like {EXAMPLES}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def format_size(size: float) -> str:
    """Short human form: 512 B, 1.5 KiB, 64.0 MiB."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(size) < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
