"""Name patterns: batches (`strom trigger 'deploy-*'`, the batch API, a task step's `pattern:`) and the
label matchers of alert triggers.

A pattern is comma-separated items; each is a glob (`deploy-*`, `db-?`, `[ab]-sync`) or, written as
`^...$`, a regular expression matched against the whole name. A name matches if any item matches.
"""

from __future__ import annotations

from collections.abc import Iterable

from .globs import glob_regex

__all__ = ["PatternError", "is_task_pattern", "matching_names"]

MAX_PATTERN = 500
_SECONDS = 0.25


class PatternError(ValueError):
    pass


def is_task_pattern(text: str) -> bool:
    """Whether `text` is a pattern rather than one task's name (task names hold none of these characters)."""
    return any(c in text for c in "*?[],^$")


def matching_names(pattern: str, names: Iterable[str]) -> list[str]:
    """The names `pattern` matches, sorted. Raises PatternError saying what is wrong with the pattern."""
    import regex

    if not isinstance(pattern, str) or not pattern.strip():
        raise PatternError("the pattern is empty; write a glob like `deploy-*` or a regular expression `^deploy-.*$`")
    if len(pattern) > MAX_PATTERN:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN} characters")
    globs, expressions = [], []
    for item in (part.strip() for part in pattern.split(",")):
        if not item:
            raise PatternError(f"the pattern {pattern!r} has an empty item between commas")
        if item.startswith("^") and item.endswith("$") and len(item) > 1:
            try:
                expressions.append(regex.compile(item))
            except regex.error as exc:
                raise PatternError(f"{item!r} is not a regular expression: {exc}") from None
        else:
            globs.append(glob_regex(item))
    try:
        return [
            name
            for name in sorted(set(names))
            if any(g.fullmatch(name) for g in globs) or any(e.fullmatch(name, timeout=_SECONDS) for e in expressions)
        ]
    except TimeoutError:
        raise PatternError(f"the pattern {pattern[:60]!r} backtracks too much; simplify it") from None
