"""ABSENT: a field that was not written (distinct from an explicit null)."""

from __future__ import annotations

from typing import Any

__all__ = ["ABSENT"]


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"

    def __bool__(self) -> bool:
        return False


ABSENT: Any = _Absent()
