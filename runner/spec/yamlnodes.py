"""YAML text -> plain dicts and lists that remember where each key and value was written.

ruamel.yaml composes the node graph (with its C parser when `ruamel.yaml.clib` is present);
we build the values ourselves so that duplicate keys are reported with both positions instead
of stopping at the first one, and so every mapping keeps the line/column of its keys and values.
"""

from __future__ import annotations

import math
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from .limits import DEFAULT_LIMITS, SpecLimits, outsized_structure
from .problems import Position, Problems

__all__ = ["MAX_NODES", "LocDict", "LocList", "YamlValue", "parse_yaml"]

MAX_NODES = 2_000_000  # guards against runaway documents
MAX_ALIASED = 100_000  # values produced by expanding aliases (guards against alias bombs)

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"
_MERGE = "tag:yaml.org,2002:merge"
_KEEP_TEXT = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:binary", "tag:yaml.org,2002:value"}


class LocDict(dict[str, Any]):
    """A mapping with `pos` (where it starts) and the positions of each key and value.

    Its keys are the text of plain scalars; its values are YamlValues (Any here, as a document may hold anything).
    """

    __slots__ = ("key_pos", "pos", "val_pos")
    pos: Position
    key_pos: dict[str, Position]
    val_pos: dict[str, Position]

    def key_at(self, key: str) -> Position:
        return self.key_pos.get(key, self.pos)

    def at(self, key: str) -> Position:
        return self.val_pos.get(key, self.pos)


class LocList(list[Any]):
    """A sequence with `pos` (where it starts) and the position of each item; its items are YamlValues."""

    __slots__ = ("item_pos", "pos")
    pos: Position
    item_pos: list[Position]

    def at(self, index: int) -> Position:
        return self.item_pos[index] if index < len(self.item_pos) else self.pos


# What a document (or any part of one) holds once parsed.
YamlValue = LocDict | LocList | str | int | float | bool | None


class _Resolver(VersionedResolver):
    """ruamel's resolver, which looks up the document's YAML version once per document, not once per value."""

    @property
    def versioned_resolver(self) -> Any:  # ruamel's own type: a table of implicit resolvers
        found = self.__dict__.get("_versioned")
        if found is None:
            found = self.__dict__["_versioned"] = super().versioned_resolver
        return found


def _yaml() -> YAML:
    yaml = YAML(typ="safe")
    yaml.Resolver = _Resolver
    return yaml


class _Builder:
    def __init__(self, filename: str, problems: Problems, limits: SpecLimits) -> None:
        self.file = filename
        self.problems = problems
        self.limits = limits
        self.count = 0
        self.aliased = 0
        self.size = 0  # bytes of scalar text produced, aliases expanded
        self.seen: set[int] = set()

    def pos(self, node: Node) -> Position:
        mark = node.start_mark
        return (self.file, mark.line + 1, mark.column + 1)

    def value(self, node: Node, depth: int = 0, aliased: bool = False) -> YamlValue:
        self.count += 1
        if not isinstance(node, ScalarNode):
            aliased = aliased or id(node) in self.seen
            self.seen.add(id(node))
        if aliased:
            self.aliased += 1
        if depth > self.limits.depth:
            raise _TooLarge(
                node,
                f"the document nests deeper than {self.limits.depth} levels here",
                "flatten it, or raise limits.yaml_depth in the server configuration",
            )
        if self.count > MAX_NODES or self.aliased > MAX_ALIASED:
            raise _TooLarge(
                node,
                "the document expands to too many values (alias bomb or runaway nesting)",
                "reduce the use of YAML aliases",
            )
        if isinstance(node, ScalarNode):
            self.size += len(node.value)
            if self.size > self.limits.expanded_size:
                raise _TooLarge(
                    node,
                    f"the document's text, with its aliases expanded, exceeds {self.limits.expanded_size} bytes here",
                    "reduce the use of YAML aliases, or raise limits.yaml_expanded_size",
                )
            return self.scalar(node)
        if isinstance(node, MappingNode):
            return self.mapping(node, depth, aliased)
        if isinstance(node, SequenceNode):
            out = LocList(self.value(item, depth + 1, aliased) for item in node.value)
            out.pos = self.pos(node)
            out.item_pos = [self.pos(item) for item in node.value]
            return out
        return None

    def scalar(self, node: ScalarNode) -> str | int | float | bool | None:
        tag: str | None = node.tag
        text: str = node.value
        if tag == _STR or tag in _KEEP_TEXT:
            return text
        if tag == _INT:
            return _to_int(text)
        if tag == _FLOAT:
            return _to_float(text)
        if tag == _BOOL:
            return text.lower() == "true"
        if tag == _NULL:
            return None
        self.problems.error(
            self.pos(node),
            "yaml-tag",
            f"unsupported YAML tag {tag!r}",
            "remove the tag; .strom files use plain YAML values",
        )
        return text

    def mapping(self, node: MappingNode, depth: int, aliased: bool = False) -> LocDict:
        out = LocDict()
        out.pos = self.pos(node)
        out.key_pos, out.val_pos = {}, {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append(value_node)
                continue
            if not isinstance(key_node, ScalarNode):
                self.problems.error(
                    self.pos(key_node),
                    "wrong-type",
                    "a mapping key must be a plain name",
                    "use a string key such as `build:`",
                )
                continue
            key: str = key_node.value
            if key in out.key_pos:
                first = out.key_pos[key]
                self.problems.error(
                    self.pos(key_node),
                    "duplicate-key",
                    f"duplicate key {key!r} (first defined at line {first[1]}, column {first[2]})",
                    f"remove one of the two {key!r} entries or rename one",
                )
                continue
            out[key] = self.value(value_node, depth + 1, aliased)
            out.key_pos[key] = self.pos(key_node)
            out.val_pos[key] = self.pos(value_node)
        for merge in merges:
            self.merge_into(out, merge, depth, aliased)
        return out

    def merge_into(self, out: LocDict, node: Node, depth: int, aliased: bool) -> None:
        sources: list[Node] = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.problems.error(
                    self.pos(source),
                    "wrong-type",
                    "a `<<` merge needs a mapping or a list of mappings",
                )
                continue
            merged = self.value(source, depth + 1, aliased)
            if not isinstance(merged, LocDict):  # never: `source` is a mapping node
                continue
            for key, value in merged.items():
                if key not in out:
                    out[key] = value
                    out.key_pos[key] = merged.key_pos[key]
                    out.val_pos[key] = merged.val_pos[key]


class _TooLarge(Exception):
    def __init__(self, node: Node, message: str, hint: str) -> None:
        super().__init__(message)
        self.node, self.message, self.hint = node, message, hint


def _to_int(text: str) -> int | str:
    clean = text.replace("_", "")
    try:
        return int(clean, 0)
    except ValueError:
        try:
            return int(clean, 10)
        except ValueError:
            return text


def _to_float(text: str) -> float | str:
    lowered = text.lower().replace("_", "")
    if lowered in (".inf", "+.inf"):
        return math.inf
    if lowered == "-.inf":
        return -math.inf
    if lowered == ".nan":
        return math.nan
    try:
        return float(lowered)
    except ValueError:
        return text


def parse_yaml(text: str, filename: str, problems: Problems, limits: SpecLimits = DEFAULT_LIMITS) -> YamlValue:
    """Return the document's value (None for an empty file); problems go to `problems`."""
    if len(text) > limits.file_size:
        problems.error(
            (filename, 1, 1),
            "too-large",
            f"the file is larger than the limit of {limits.file_size} bytes",
            "split it into several files, or raise limits.workflow_file_size in the server configuration",
        )
        return None
    outsized = outsized_structure(text, limits)
    if outsized is not None:
        line, column, message, hint = outsized
        problems.error((filename, line, column), "yaml-too-large", message, hint)
        return None
    try:
        root: Node | None = _yaml().compose(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = " ".join(part for part in (exc.context, exc.problem) if part)
        hint = (
            "a .strom file holds one YAML document; remove the extra `---`"
            if "single document" in what
            else "check indentation, quotes and brackets around this position"
        )
        problems.error((filename, line, col), "yaml-syntax", f"YAML syntax error: {what}", hint)
        return None
    except (YAMLError, RecursionError) as exc:
        problems.error((filename, 1, 1), "yaml-syntax", f"YAML syntax error: {str(exc)[:300]}")
        return None
    if root is None:
        return None
    builder = _Builder(filename, problems, limits)
    try:
        return builder.value(root)
    except _TooLarge as exc:
        problems.error(builder.pos(exc.node), "yaml-too-large", exc.message, exc.hint)
        return None
