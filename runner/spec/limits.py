"""How big a workspace's definitions may be: checked before (and while) any YAML parser runs.

Definitions come from anyone who can push, and from pull requests of strangers; so a file's size,
all files' size, nesting depth, what aliases expand to and the number of tasks and steps are
bounded, each with an error that names the limit, where it was crossed and the setting that
raises it (`limits:` in the server configuration).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SpecLimits", "DEFAULT_LIMITS", "too_deep_for_the_parser", "PARSER_DEPTH"]

PARSER_DEPTH = 1000  # nesting the YAML parser's C code is given at all (it crashes near 60,000)


@dataclass(frozen=True)
class SpecLimits:
    file_size: int = 4 * 1024 * 1024  # bytes of one .strom file (limits.workflow_file_size)
    total_size: int = 16 * 1024 * 1024  # bytes of all of them (limits.workflow_total_size)
    depth: int = 64  # nested mappings and lists (limits.yaml_depth)
    expanded_size: int = 32 * 1024 * 1024  # bytes of text once aliases are expanded (limits.yaml_expanded_size)
    tasks: int = 2000  # (limits.tasks)
    steps: int = 20_000  # across all tasks (limits.steps)


DEFAULT_LIMITS = SpecLimits()


def too_deep_for_the_parser(text: str) -> tuple[int, int] | None:
    """(line, column) where `text` nests deeper than PARSER_DEPTH, or None.

    One pass that cannot recurse, run before the parser: flow brackets (outside quotes and
    comments) and, per line, indentation plus compact `- ` / `? ` indicators. Deep but parseable
    documents are then refused with their exact position by the limits.yaml_depth check."""
    for match in _BLOCK.finditer(text):
        if match.end() - match.start() > 2 * PARSER_DEPTH:
            return _position(text, match.start())
    depth, quote = 0, None
    for match in _SPECIAL.finditer(text):
        char = match.group()
        if quote is not None:
            if char == quote or (quote == "#" and char == "\n"):
                quote = None
        elif char in "\"'#":
            quote = char
        elif char in "[{":
            depth += 1
            if depth > PARSER_DEPTH:
                return _position(text, match.start())
        elif char in "]}":
            depth = max(0, depth - 1)
    return None


def _position(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - text.rfind("\n", 0, offset)


_SPECIAL = re.compile(r"[\[\]{}\"'#\n]")
_BLOCK = re.compile(r"^[ \t]*(?:[-?][ \t]+)*", re.MULTILINE)
