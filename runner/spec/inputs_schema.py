"""Input schemas (`input:` on tasks and named actions) and output schemas."""

from __future__ import annotations

from typing import Any

from ..suggestions import suggest
from ..templating import is_template
from .fields import INPUT_FIELDS
from .inputs import PRIMITIVE_TYPES, coerce
from .model import ABSENT, InputField, InputType
from .problems import Problems
from .reader import Reader, describe, location
from .yamlnodes import LocDict

__all__ = ["build_input_schema", "check_output_schema", "split_inline_input"]

_TYPE_NAMES = [t.value for t in InputType]


def build_input_schema(
    data: LocDict | None, problems: Problems, what: str, connection_types: frozenset[str] = frozenset()
) -> dict[str, InputField]:
    if data is None:
        return {}
    out: dict[str, InputField] = {}
    for name, spec in data.items():
        if not isinstance(spec, LocDict):
            problems.error(
                data.at(name),
                "wrong-type",
                f"{what}: input {name!r} must be a mapping, got {describe(spec)}",
                f"write it like `{name}: {{ type: string, required: true }}`",
            )
            continue
        field = _build_field(Reader(spec, problems, f"{what}: input {name!r}"), name, connection_types)
        if field is not None:
            out[name] = field
    return out


def _build_field(r: Reader, name: str, connection_types: frozenset[str]) -> InputField | None:
    r.check_keys(INPUT_FIELDS)
    if not r.require("type", "add `type: string` (or text, integer, number, boolean, date, datetime, json)"):
        return None
    kind = r.string("type")
    if kind is None:
        return None
    if kind == "bool":
        kind = "boolean"
    if kind not in PRIMITIVE_TYPES and kind not in connection_types:
        candidates = _TYPE_NAMES + sorted(connection_types)
        hint = suggest(kind, candidates)
        fix = (
            "use type: json for lists and objects"
            if kind in ("array", "object", "list", "map")
            else f"types: {', '.join(candidates)}"
        )
        r.error("type", "bad-value", f"unknown input type {kind!r}" + (f"; {hint}" if hint else ""), fix)
        return None
    options = r.raw("options", None)
    if r.has("enum"):
        r.warning("enum", "deprecated", "`enum` is an old spelling of `options`", "rename it to `options`")
        options = options if options is not None else r.raw("enum", None)
    if options is not None and not isinstance(options, list):
        r.error(
            "options" if r.has("options") else "enum",
            "wrong-type",
            f"'options' must be a list, got {describe(options)}",
            "write it like `options: [staging, production]`",
        )
        options = None
    field = InputField(
        name=name,
        type=kind,
        label=r.string("name"),
        description=r.string("description"),
        required=r.boolean("required"),
        default=r.raw("default", ABSENT),
        options=tuple(options) if options is not None else None,
        multiple=r.boolean("multiple"),
        allow_custom=r.boolean("allow_custom"),
        secret=r.boolean("secret"),
        order=r.integer("order"),
        location=location(r.data.pos),
    )
    if field.multiple and field.secret:
        r.error("multiple", "conflict", "`multiple` cannot be combined with `secret`", "remove one of them")
    if field.options is not None and kind in PRIMITIVE_TYPES:
        for i, option in enumerate(field.options):
            try:
                coerce(_single(field), option)
            except ValueError as exc:
                r.problems.error(
                    r.data["options"].at(i) if r.has("options") else r.data.pos,
                    "wrong-type",
                    f"{r.what}: option {option!r} does not fit type {kind}: {exc}",
                )
    _check_default(r, field)
    return field


def _single(field: InputField) -> InputField:
    return InputField(name=field.name, type=field.type)


def _check_default(r: Reader, field: InputField) -> None:
    default = field.default
    if default is ABSENT or default is None:
        return
    if isinstance(default, str) and is_template(default):
        r.check_template(default, r.at("default"), "default")
        return
    if field.type not in PRIMITIVE_TYPES:
        return
    if field.multiple and not isinstance(default, list):
        r.error(
            "default",
            "wrong-type",
            "the default of a `multiple` input must be a list",
            "write it like `default: [dev, staging]`",
        )
        return
    try:
        coerce(field, default)
    except ValueError as exc:
        r.error("default", "wrong-type", f"default does not fit the input: {exc}")


def check_output_schema(r: Reader) -> dict[str, Any] | None:
    data = r.mapping("output", "{ version: { type: string } }")
    if data is None:
        return None
    fields = data
    if set(data) == {"properties"} and isinstance(data.get("properties"), dict):
        fields = data["properties"]
    for name, spec in fields.items():
        if not isinstance(spec, LocDict):
            r.problems.error(
                fields.at(name),
                "wrong-type",
                f"{r.what}: output field {name!r} must be a mapping, got {describe(spec)}",
                f"write it like `{name}: {{ type: string }}`",
            )
            continue
        sub = Reader(spec, r.problems, f"{r.what}: output field {name!r}")
        sub.check_keys({"type", "description", "required", "default", "options", "name"})
        sub.choice("type", ("string", "integer", "number", "boolean", "array", "object"))
    return dict(fields)


def split_inline_input(node: LocDict | None) -> tuple[LocDict | None, LocDict | None]:
    """An inline step's `input`, as (the entries written as schemas, the values). Strøm lets an inline step
    declare its action's inputs there: `name: { type: string, default: World }` (a mapping of input-field keys
    with a `type`) is a schema entry; anything else is a value."""
    if node is None:
        return None, None
    schema = [
        k
        for k, v in node.items()
        if isinstance(v, LocDict) and isinstance(v.get("type"), str) and set(v) <= set(INPUT_FIELDS)
    ]
    return _part(node, schema), _part(node, [k for k in node if k not in schema])


def _part(node: LocDict, names: list[str]) -> LocDict:
    out = LocDict((k, node[k]) for k in names)
    out.pos = node.pos
    out.key_pos = {k: node.key_pos[k] for k in names if k in node.key_pos}
    out.val_pos = {k: node.val_pos[k] for k in names if k in node.val_pos}
    return out
