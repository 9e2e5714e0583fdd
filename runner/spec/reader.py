"""Typed access to one mapping of a .strom file, reporting every problem with its position."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, TypeVar, overload

from ..durations import DurationError, parse_duration
from ..sizes import SizeError, format_size, parse_size
from ..suggestions import suggest
from .model import ABSENT, Location
from .problems import Position, Problems
from .yamlnodes import LocDict, LocList

__all__ = ["Explain", "Reader", "describe", "location"]

# Explains a key that is not allowed here but is known elsewhere: (message, hint), or None.
Explain = Callable[[str], tuple[str, str] | None]
_E = TypeVar("_E", bound=Enum)
_D = TypeVar("_D")
_N = TypeVar("_N", int, float)


def describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def location(pos: Position) -> Location:
    return Location(*pos)


class Reader:
    """Reads fields of `data`, the mapping of `what` (e.g. 'action "deploy"')."""

    def __init__(self, data: LocDict, problems: Problems, what: str) -> None:
        self.data = data
        self.problems = problems
        self.what = what
        self.locations: dict[str, Location] = {}

    # -- positions
    def at(self, key: str) -> Position:
        return self.data.at(key)

    def key_at(self, key: str) -> Position:
        return self.data.key_at(key)

    def has(self, key: str) -> bool:
        return key in self.data

    def error(self, key: str | None, code: str, message: str, hint: str = "", on_key: bool = False) -> None:
        if key is None:
            pos = self.data.pos
        else:
            pos = self.key_at(key) if on_key else self.at(key)
        self.problems.error(pos, code, f"{self.what}: {message}", hint)

    def warning(self, key: str | None, code: str, message: str, hint: str = "") -> None:
        pos = self.data.pos if key is None else self.key_at(key)
        self.problems.warning(pos, code, f"{self.what}: {message}", hint)

    # -- keys
    def check_keys(self, allowed: Iterable[str], explain: Explain | None = None) -> None:
        """Report keys outside `allowed`. `explain(key)` may return (message, hint) for known-but-misplaced keys."""
        allowed = set(allowed)
        for key in self.data:
            if key in allowed:
                continue
            special = explain(key) if explain else None
            if special:
                self.error(key, "invalid-field", special[0], special[1], on_key=True)
                continue
            hint = suggest(key, allowed)
            fix = "fix the spelling" if hint else f"valid keys here: {', '.join(sorted(allowed))}"
            self.error(key, "unknown-key", f"unknown key {key!r}" + (f"; {hint}" if hint else ""), fix, on_key=True)

    def require(self, key: str, hint: str) -> bool:
        if key in self.data and self.data[key] is not None:
            return True
        self.problems.error(self.data.pos, "missing-field", f"{self.what}: missing required field {key!r}", hint)
        return False

    def _wrong(self, key: str, expected: str, example: str = "") -> None:
        got = describe(self.data[key])
        self.error(
            key,
            "wrong-type",
            f"{key!r} must be {expected}, got {got}",
            f"write it like `{key}: {example}`" if example else "",
        )

    def _remember(self, key: str) -> None:
        self.locations[key] = location(self.at(key))

    # -- scalars
    def string(self, key: str, example: str = "text") -> str | None:
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        self._remember(key)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self._wrong(key, "a string", example)
            return None
        return str(value)

    def template(self, key: str, example: str = "text") -> str | None:
        value = self.string(key, example)
        if value is not None:
            self.check_template(value, self.at(key), key)
        return value

    def check_template(self, source: str, pos: Position, field: str) -> None:
        from ..templating import syntax_problems  # imported here: the server config has no templates

        for message in syntax_problems(source):
            line = pos[1]
            if "\n" in source.rstrip("\n") and message.startswith("template line "):
                try:
                    line = pos[1] + int(message.split()[2].rstrip(":"))
                except ValueError:
                    pass
            self.problems.error(
                (pos[0], line, pos[2]),
                "template",
                f"{self.what}: invalid template in {field!r}: {message}",
                "templates use Jinja2 syntax: {{ input.name }}, {% if ... %}...{% endif %}",
            )

    def boolean(self, key: str, default: bool = False) -> bool:
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        if not isinstance(value, bool):
            self._wrong(key, "true or false", "true")
            return default
        return value

    def integer(self, key: str, minimum: int | None = None, maximum: int | None = None) -> int | None:
        example = str(minimum if minimum is not None else 1)
        return self._number(key, (int,), "a whole number", example, minimum, maximum)

    def number(self, key: str, minimum: float | None = None, maximum: float | None = None) -> float | None:
        value = self._number(key, (int, float), "a number", "0.5", minimum, maximum)
        return float(value) if value is not None else None

    def _number(
        self,
        key: str,
        kinds: tuple[type[_N], ...],
        expected: str,
        example: str,
        minimum: float | None,
        maximum: float | None,
    ) -> _N | None:
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, kinds):
            self._wrong(key, expected, example)
            return None
        number: _N = value  # one of `kinds`
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            bounds = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
            self.error(key, "out-of-range", f"{key!r} must be {bounds}, got {value}")
            return None
        return number

    def duration(self, key: str, maximum: float | None = None, max_text: str = "") -> float | None:
        if key not in self.data or self.data[key] is None:
            return None
        try:
            seconds = parse_duration(self.data[key])
        except DurationError as exc:
            self.error(key, "bad-duration", f"{key!r}: {exc}", "for example `timeout: 10m` or `timeout: 1h30m`")
            return None
        if maximum is not None and seconds > maximum:
            self.error(
                key,
                "bad-duration",
                f"{key!r} is {self.data[key]}, above the maximum of {max_text}",
                f"use at most {max_text}",
            )
            return None
        self._remember(key)
        return seconds

    def size(self, key: str, minimum: int = 0) -> int | None:
        if key not in self.data or self.data[key] is None:
            return None
        try:
            size = parse_size(self.data[key])
        except SizeError as exc:
            self.error(key, "bad-size", f"{key!r}: {exc}", "for example `64MiB` or `512KiB`")
            return None
        if size < minimum:
            self.error(
                key,
                "bad-size",
                f"{key!r} is {self.data[key]}, below the minimum of {format_size(minimum)}",
                f"use at least {format_size(minimum)}",
            )
            return None
        self._remember(key)
        return size

    @overload
    def choice(
        self, key: str, choices: Iterable[str], default: str, aliases: Mapping[str, str] | None = None
    ) -> str: ...

    @overload
    def choice(
        self, key: str, choices: Iterable[str], default: None = None, aliases: Mapping[str, str] | None = None
    ) -> str | None: ...

    def choice(
        self, key: str, choices: Iterable[str], default: str | None = None, aliases: Mapping[str, str] | None = None
    ) -> str | None:
        """The value, one of `choices` (or a key of `aliases`, which gives what it stands for), or `default`."""
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        options = list(aliases or choices)
        if not isinstance(value, str) or value not in options:
            hint = suggest(str(value), options) if isinstance(value, str) else ""
            self.error(
                key,
                "bad-value",
                f"{key!r} must be one of {', '.join(options)}; got {value!r}" + (f"; {hint}" if hint else ""),
            )
            return default
        return aliases[value] if aliases else value

    def member(self, key: str, kind: type[_E], default: _D) -> _E | _D:
        """The member of `kind` whose value is written, or `default` (when absent, null or not one of them)."""
        if key not in self.data or self.data[key] is None:
            return default
        value = self.data[key]
        options = [member.value for member in kind]
        if not isinstance(value, str) or value not in options:
            hint = suggest(str(value), options) if isinstance(value, str) else ""
            self.error(
                key,
                "bad-value",
                f"{key!r} must be one of {', '.join(options)}; got {value!r}" + (f"; {hint}" if hint else ""),
            )
            return default
        return kind(value)

    # -- collections
    def string_list(self, key: str, example: str = "[a, b]") -> tuple[str, ...] | None:
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        if not isinstance(value, list):
            self._wrong(key, "a list of strings", example)
            return None
        out = []
        for i, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, (str, int, float)):
                # a list from the environment (server configuration) is a plain list, without positions
                self.problems.error(
                    value.at(i) if isinstance(value, LocList) else self.at(key),
                    "wrong-type",
                    f"{self.what}: {key}[{i}] must be a string, got {describe(item)}",
                )
                continue
            out.append(str(item))
        self._remember(key)
        return tuple(out)

    def template_list(self, key: str, example: str = '["--flag", "{{ input.x }}"]') -> tuple[str, ...] | None:
        items = self.string_list(key, example)
        if items:
            value: LocList = self.data[key]
            for i, item in enumerate(items):
                if i < len(value.item_pos):
                    self.check_template(item, value.at(i), f"{key}[{i}]")
        return items

    def mapping(self, key: str, example: str = "{ key: value }") -> LocDict | None:
        if key not in self.data or self.data[key] is None:
            return None
        value = self.data[key]
        if not isinstance(value, LocDict):  # every mapping of a document, or of the server configuration, is one
            self._wrong(key, "a mapping", example)
            return None
        self._remember(key)
        return value

    def scalar_map(self, key: str, example: str = '{ NAME: "{{ input.value }}" }') -> dict[str, str]:
        """A mapping of names to scalar template values (env, headers)."""
        value = self.mapping(key, example)
        if value is None:
            return {}
        out: dict[str, str] = {}
        for name, item in value.items():
            if isinstance(item, (dict, list)):
                self.problems.error(
                    value.at(name),
                    "wrong-type",
                    f"{self.what}: {key}.{name} must be a single value, got {describe(item)}",
                    "quote structured values as a string, or use | json_encode",
                )
                continue
            text = "" if item is None else ("true" if item is True else "false" if item is False else str(item))
            self.check_template(text, value.at(name), f"{key}.{name}")
            self.locations[f"{key}.{name}"] = location(value.at(name))
            out[str(name)] = text
        return out

    def values(self, key: str) -> dict[str, Any]:
        """A mapping of names to any values whose strings are templates (step input)."""
        value = self.mapping(key, '{ name: "{{ input.name }}" }')
        if value is None:
            return {}
        self.check_templates_in(value, key)
        return dict(value)

    def check_templates_in(self, value: object, field: str) -> None:
        """Check every string inside `value`, a value of a document (a LocDict or LocList holds them)."""
        if isinstance(value, str):
            return
        if isinstance(value, LocDict):
            for k, item in value.items():
                if isinstance(item, str):
                    self.check_template(item, value.at(k), f"{field}.{k}")
                    self.locations[f"{field}.{k}"] = location(value.at(k))
                else:
                    self.check_templates_in(item, f"{field}.{k}")
        elif isinstance(value, LocList):
            for i, item in enumerate(value):
                if isinstance(item, str):
                    self.check_template(item, value.at(i), f"{field}[{i}]")
                else:
                    self.check_templates_in(item, f"{field}[{i}]")

    def raw(self, key: str, default: Any = ABSENT) -> Any:
        """The value as written (any YamlValue), or `default`."""
        return self.data.get(key, default)
