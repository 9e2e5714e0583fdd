"""Problems found in .strom files: where, what, and how to fix it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from .layout import is_stroem_file

__all__ = ["Problem", "Problems", "Severity"]

_LENIENT = frozenset({"unknown-key"})  # errors that are warnings in Strøm's `.workflows/` files


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Problem:
    file: str
    line: int
    column: int
    code: str
    message: str
    hint: str = ""
    severity: Severity = Severity.ERROR

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def format(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.severity.value}: {self.message}"
        if self.hint:
            text += f"\n    fix: {self.hint}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "severity": self.severity.value,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
        }


Position = tuple[str, int, int]  # file, 1-based line, 1-based column


class Problems:
    """Collects problems so one run reports all of them."""

    def __init__(self) -> None:
        self.items: list[Problem] = []

    def error(self, pos: Position, code: str, message: str, hint: str = "") -> None:
        if code in _LENIENT and is_stroem_file(pos[0]):  # what Strøm ignores stays a warning in its own files
            self.warning(pos, code, f"{message} (Strøm ignores it; a .strom/ file may not have it)", hint)
            return
        self.items.append(Problem(pos[0], pos[1], pos[2], code, message, hint))

    def warning(self, pos: Position, code: str, message: str, hint: str = "") -> None:
        self.items.append(Problem(pos[0], pos[1], pos[2], code, message, hint, Severity.WARNING))

    @property
    def has_errors(self) -> bool:
        return any(p.is_error for p in self.items)

    def sorted(self) -> list[Problem]:
        return sorted(self.items, key=lambda p: (p.file, p.line, p.column, p.code))
