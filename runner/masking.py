"""Hide secret values in text: log lines, errors, outputs shown to people."""
from __future__ import annotations

import json
import re
from typing import Iterable

__all__ = ["Masker", "MASK"]

MASK = "***"
_MIN_LINE = 3  # lines of a multi-line secret shorter than this are too common to hide


class Masker:
    """Replaces every known secret value (and each line of multi-line values) with ***."""

    def __init__(self, values: Iterable[str] = ()):
        needles: set[str] = set()
        for value in values:
            if not isinstance(value, str) or not value:
                continue
            needles.add(value)
            encoded = json.dumps(value)[1:-1]
            if encoded != value:
                needles.add(encoded)
            if "\n" in value:
                needles.update(line.strip() for line in value.splitlines() if len(line.strip()) >= _MIN_LINE)
        self._needles = sorted(needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(n) for n in self._needles)) if self._needles else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._needles)

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def mask_value(self, value):
        """Mask inside strings of a JSON-like structure."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.mask(value)
        if isinstance(value, dict):
            return {k: self.mask_value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.mask_value(v) for v in value]
        return value
