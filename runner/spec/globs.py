"""Branch, tag and path globs with `!` exclusions, evaluated in order (the last pattern that matches wins).

`*` matches within one path segment, `**` across segments, `?` one character, `[abc]` a class.
A list of only exclusions starts from "everything".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

__all__ = ["any_included", "glob_regex", "included"]


def _class_end(pattern: str, start: int) -> int:
    """Index of the `]` closing the class opened at `start`, or -1."""
    j = start + 1
    if pattern[j : j + 1] == "!":
        j += 1
    if pattern[j : j + 1] == "]":
        j += 1
    return pattern.find("]", j)


@lru_cache(maxsize=1024)
def glob_regex(pattern: str) -> re.Pattern[str]:
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif c == "*":
            out.append("[^/]*")
            i += 1
        elif c == "?":
            out.append("[^/]")
            i += 1
        elif c == "[" and _class_end(pattern, i) > 0:
            end = _class_end(pattern, i)
            body = pattern[i + 1 : end]
            body = "^" + body[1:] if body.startswith("!") else body
            char_class = "[" + body.replace("\\", "\\\\") + "]"
            try:
                re.compile(char_class)
            except re.error:  # a reversed range such as [z-a]: the brackets are plain characters then
                char_class = re.escape(pattern[i : end + 1])
            out.append(char_class)
            i = end + 1
        else:
            out.append(re.escape(c))
            i += 1
    return re.compile("".join(out) + r"\Z")


def included(value: str, patterns: Sequence[str]) -> bool:
    """Whether `value` passes `patterns` (an empty list passes everything)."""
    if not patterns:
        return True
    result = all(p.startswith("!") for p in patterns)
    for pattern in patterns:
        negated = pattern.startswith("!")
        if glob_regex(pattern[1:] if negated else pattern).match(value):
            result = not negated
    return result


def any_included(values: Iterable[str], patterns: Sequence[str]) -> bool:
    return any(included(v, patterns) for v in values)
