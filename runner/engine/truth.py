"""Strøm's truthiness for `when:`, decided on the rendered text."""

from __future__ import annotations

__all__ = ["is_truthy"]

_FALSY = {"", "false", "null", "none", "[]", "{}"}


def is_truthy(text: str) -> bool:
    value = text.strip()
    if value.lower() in _FALSY:
        return False
    try:
        return float(value) != 0
    except ValueError:
        return True
