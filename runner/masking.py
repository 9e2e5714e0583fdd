"""Hide secret values in text: log lines, errors and outputs, before they are stored.

A secret is hidden as it is, JSON-escaped, URL-encoded and base64-encoded, and line by line when
it has several lines; a long line cut in pieces is cut where no secret is split.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "WITHHELD", "Masker", "Withheld", "secret_leaves"]

MASK = "***"
WITHHELD = "(withheld)"
_MIN_LINE = 3  # lines of a multi-line secret shorter than this are too common to hide
_MIN_ENCODED = 6  # secrets at least this long are hidden in their encoded forms too


def _forms(value: str) -> set[str]:
    """The value and the ways it is commonly written out: JSON-escaped, URL-encoded, base64 (long enough values
    only: short ones would hide ordinary text)."""
    forms = {value, json.dumps(value)[1:-1]}
    if len(value) >= _MIN_ENCODED:
        raw = value.encode("utf-8", "surrogatepass")
        forms.update({quote(value, safe=""), quote_plus(value), quote(value)})
        for encoded in (base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode()):
            forms.update({encoded, encoded.rstrip("=")})
    return {form for form in forms if form}


class Masker:
    """Replaces every known secret value (and each line of multi-line values) with ***."""

    def __init__(self, values: Iterable[str] = ()):
        needles: set[str] = set()
        for value in values:
            if not isinstance(value, str) or not value:
                continue
            needles.update(_forms(value))
            if "\n" in value:
                needles.update(line.strip() for line in value.splitlines() if len(line.strip()) >= _MIN_LINE)
        self._needles = sorted(needles, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(n) for n in self._needles)) if self._needles else None
        self._raw = [n.encode("utf-8", "surrogatepass") for n in self._needles]

    def __bool__(self) -> bool:
        return self._pattern is not None

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._needles)

    def mask(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def safe_cut(self, buffer: bytes, cut: int) -> int:
        """Where to cut a long line near `cut` so that no secret is split in two (and so escapes masking)."""
        for needle in self._raw:
            start = buffer.find(needle, max(0, cut - len(needle) + 1), cut + len(needle) - 1)
            while start != -1 and start < cut:
                if start + len(needle) > cut:  # straddles: cut before it, or after it if it opens the line
                    cut = start if start > 0 else start + len(needle)
                    break
                start = buffer.find(needle, start + 1, cut + len(needle) - 1)
        return cut

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


class Withheld(Masker):
    """Hides every value: for showing a run whose secrets can no longer be known (its definitions are gone).
    Showing such a run's outputs and inputs in clear could show a secret; so none is shown."""

    def __init__(self, reason: str = ""):
        super().__init__()
        self.reason = reason

    def __bool__(self) -> bool:
        return True

    def mask(self, text: str) -> str:
        return WITHHELD if text else text

    def mask_value(self, value):
        return None if value is None else WITHHELD


def secret_leaves(values: Iterable[Any]) -> list[str]:
    """The text values of secrets, those inside secret maps (`secret.db.user`) too, to give a Masker."""
    out: list[str] = []
    stack = list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            out.append(value)
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            stack.extend(value)
    return out
