"""How big a workspace's definitions may be: checked before (and while) any YAML parser runs.

Definitions come from anyone who can push, and from pull requests of strangers; so a file's size,
all files' size, nesting depth, what aliases expand to and the number of tasks and steps are
bounded, each with an error that names the limit, where it was crossed and the setting that
raises it (`limits:` in the server configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ruamel.yaml is imported when a document is read
    from ruamel.yaml.events import Event

__all__ = ["DEFAULT_LIMITS", "SpecLimits", "outsized_structure"]


@dataclass(frozen=True)
class SpecLimits:
    file_size: int = 4 * 1024 * 1024  # bytes of one .strom file (limits.workflow_file_size)
    total_size: int = 16 * 1024 * 1024  # bytes of all of them (limits.workflow_total_size)
    files: int = 1000  # workflow files (limits.workflow_files)
    depth: int = 64  # nested mappings and lists (limits.yaml_depth)
    nodes: int = 200_000  # YAML nodes of one file: mappings, lists, keys and values (limits.yaml_nodes)
    expanded_size: int = 32 * 1024 * 1024  # bytes of text once aliases are expanded (limits.yaml_expanded_size)
    tasks: int = 2000  # (limits.tasks)
    steps: int = 20_000  # across all tasks (limits.steps)


DEFAULT_LIMITS = SpecLimits()


def outsized_structure(text: str, limits: SpecLimits) -> tuple[int, int, str, str] | None:
    """(line, column, message, hint) where `text` nests deeper than `limits.depth` or holds more than
    `limits.nodes` nodes, or None.

    Read as a stream of parser events, which needs no recursion and builds nothing, before the
    document is composed (composing recurses in C: a deep enough document crashes the process, a
    long enough one takes minutes)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    depth = count = 0
    try:
        for event in YAML(typ="safe").parse(text):
            count += 1
            kind = type(event).__name__
            if kind in _OPENING:
                depth += 1
                if depth > limits.depth + 1:  # the document's own mapping is level 0
                    return (
                        *_mark(event),
                        f"the document nests deeper than {limits.depth} levels here",
                        "flatten it (a .strom file needs a few levels), or raise limits.yaml_depth in the "
                        "server configuration",
                    )
            elif kind in _CLOSING:
                depth -= 1
            if count > limits.nodes:
                return (
                    *_mark(event),
                    f"the document holds more than {limits.nodes} YAML nodes",
                    "split it into several files, or raise limits.yaml_nodes in the server configuration",
                )
    except YAMLError:
        return None  # composing reports the syntax error with its position
    return None


_OPENING = {"MappingStartEvent", "SequenceStartEvent"}
_CLOSING = {"MappingEndEvent", "SequenceEndEvent"}


def _mark(event: Event) -> tuple[int, int]:
    mark = event.start_mark
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
