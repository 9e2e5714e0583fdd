"""Inputs: check and convert the values a run is started with against an input schema.

Pure functions; the same rules serve `strom run -i`, the API and triggers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any

from ..errors import InputError
from ..suggestions import suggest
from .model import ABSENT, InputField, InputType

__all__ = ["PRIMITIVE_TYPES", "coerce", "parse_pairs", "resolve_inputs"]

PRIMITIVE_TYPES = frozenset(t.value for t in InputType) | {"bool"}
_INT = re.compile(r"[+-]?\d+")
_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


def _scalar(field: InputField, value: Any, from_templates: bool = False) -> Any:
    kind = field.type
    if kind in ("string", "text"):
        if isinstance(value, (dict, list)) and from_templates:
            return value  # a lone `{{ step.output.items }}` keeps its list or mapping, as in Strøm
        if isinstance(value, (dict, list)):
            raise ValueError(f"expected text, got a {'mapping' if isinstance(value, dict) else 'list'}")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if kind == "integer":
        if isinstance(value, bool):
            raise ValueError("expected a whole number, got a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and _INT.fullmatch(value.strip()):
            return int(value.strip())
        raise ValueError(f"expected a whole number, got {value!r}")
    if kind == "number":
        if isinstance(value, bool):
            raise ValueError("expected a number, got a boolean")
        if isinstance(value, (int, float)):
            return value
        if isinstance(value, str):
            text = value.strip()
            if _INT.fullmatch(text):
                return int(text)
            try:
                return float(text)
            except ValueError:
                pass
        raise ValueError(f"expected a number, got {value!r}")
    if kind in ("boolean", "bool"):
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ValueError(f"expected true or false, got {value!r}")
    if kind == "date":
        text = value.isoformat() if isinstance(value, date) else str(value)
        try:
            date.fromisoformat(text)
        except ValueError:
            raise ValueError(f"expected a date like 2026-01-15, got {value!r}") from None
        return text
    if kind == "datetime":
        text = value.isoformat() if isinstance(value, datetime) else str(value)
        try:
            datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected a date and time like 2026-01-15T14:30, got {value!r}") from None
        return text
    if kind == "json":
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
    # a connection type: the value names a connection
    if not isinstance(value, str):
        raise ValueError(f"expected the name of a {kind} connection, got {value!r}")
    return value


def _split_multiple(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
        return [part.strip() for part in text.split(",") if part.strip()]
    return [value]


def coerce(field: InputField, value: Any, from_templates: bool = False) -> Any:
    """Convert `value` to the field's type; raise ValueError with a message for the user. `from_templates`: the
    value was rendered from a workflow's template (a step's input), and a list or mapping stays one in a text input."""
    if field.multiple:
        items = [_scalar(field, item) for item in _split_multiple(value)]
        _check_options(field, items)
        return items
    converted = _scalar(field, value, from_templates)
    _check_options(field, [converted])
    return converted


def _check_options(field: InputField, values: list[Any]) -> None:
    if not field.options or field.allow_custom:
        return
    for value in values:
        if value not in field.options:
            allowed = ", ".join(map(str, field.options))
            raise ValueError(f"{value!r} is not one of the options ({allowed})")


def resolve_inputs(
    schema: Mapping[str, InputField],
    given: Mapping[str, Any],
    *,
    task: str,
    render_default: Callable[[InputField, str], Any] | None = None,
    allow_extra: bool = False,
    from_templates: bool = False,
) -> dict[str, Any]:
    """Apply defaults, convert types and check required fields; raise InputError listing every problem."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, field in schema.items():
        if name in given and given[name] is not None:
            raw = given[name]
        elif field.default is not ABSENT and field.default is not None:
            raw = field.default
            if isinstance(raw, str) and render_default is not None:
                try:
                    raw = render_default(field, raw)
                except Exception as exc:  # noqa: BLE001 - a template error in a default is the caller's problem to read
                    errors[name] = f"default could not be rendered: {exc}"
                    continue
        else:
            if field.required:
                errors[name] = f"required; pass it as {name}=<{field.type}>"
            continue
        try:
            values[name] = coerce(field, raw, from_templates)
        except ValueError as exc:
            errors[name] = str(exc)
    for name in given:
        if name in schema:
            continue
        if allow_extra:
            values[name] = given[name]
            continue
        if schema:
            hint = suggest(name, schema)
            errors[name] = "unknown input" + (f"; {hint}" if hint else "") + f" (takes: {', '.join(schema)})"
        else:
            errors[name] = f"task {task!r} takes no inputs"
    if errors:
        raise InputError(task, errors)
    return values


def parse_pairs(pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """`["a=1", "b=x", "b=y"]` -> {"a": "1", "b": ["x", "y"]}; a repeated key makes a list."""
    out: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"{pair!r} is not key=value")
        key, _, value = pair.partition("=")
        key = key.strip()
        if not key:
            raise ValueError(f"{pair!r} has no key before '='")
        if key in out:
            previous = out[key]
            out[key] = (previous if isinstance(previous, list) else [previous]) + [value]
        else:
            out[key] = value
    return out
