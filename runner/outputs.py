"""The structured output protocol: the last `OUTPUT: {json}` line a step prints on stdout."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["OUTPUT_PREFIX", "OutputCollector"]

OUTPUT_PREFIX = "OUTPUT:"


class OutputCollector:
    """Feed stdout lines; `result()` gives (output, error) from the last OUTPUT line."""

    def __init__(self) -> None:
        self._last: str | None = None

    def feed(self, line: str) -> None:
        stripped = line.lstrip()
        if stripped.startswith(OUTPUT_PREFIX):
            self._last = stripped[len(OUTPUT_PREFIX) :].strip()

    def result(self) -> tuple[Any, str | None]:
        if self._last is None:
            return None, None
        try:
            return json.loads(self._last), None
        except ValueError as exc:  # a JSONDecodeError, or a plain ValueError (an integer of too many digits)
            preview = self._last if len(self._last) <= 120 else self._last[:117] + "..."
            where = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else str(exc)
            return None, f"the last OUTPUT line is not valid JSON ({where}): {preview}"
