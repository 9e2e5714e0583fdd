"""Did-you-mean hints for names a user mistyped."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["suggest"]


def suggest(word: str, candidates: Iterable[str]) -> str:
    """' — did you mean "x"?' for the closest candidate, or ''."""
    names = [c for c in candidates if isinstance(c, str)]
    match = difflib.get_close_matches(word, names, n=1, cutoff=0.6)
    if not match:
        lowered = {c.lower(): c for c in names}
        if word.lower() in lowered:
            match = [lowered[word.lower()]]
    return f'did you mean "{match[0]}"?' if match else ""
