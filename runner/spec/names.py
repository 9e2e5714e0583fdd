"""Rules for the names of actions, tasks, steps and triggers."""

from __future__ import annotations

import re

__all__ = ["RESERVED_TEMPLATE_NAMES", "WEBHOOK_NAME", "name_problem"]

_BAD = re.compile(r"[\[\]/\s\x00-\x1f]")
WEBHOOK_NAME = re.compile(r"[A-Za-z0-9_-]+")

# Names the template context already uses; a step named like one cannot be referenced by its short name.
RESERVED_TEMPLATE_NAMES = frozenset(
    {
        "input",
        "steps",
        "secret",
        "secrets",
        "each",
        "event",
        "git",
        "job",
        "hook",
        "env",
        "loop",
        "self",
        "true",
        "false",
        "none",
        "null",
        "and",
        "or",
        "not",
        "is",
        "in",
        "if",
        "else",
    }
)


def name_problem(name: str, kind: str) -> str | None:
    if not isinstance(name, str) or not name:
        return f"a {kind} name cannot be empty"
    match = _BAD.search(name)
    if match:
        char = repr(match.group())
        return (
            f"{kind} name {name!r} contains {char}; names may not contain spaces, '/', '[' or ']' "
            f"(brackets name for_each instances)"
        )
    return None
