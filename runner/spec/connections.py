"""`connection_types:` (schemas) and `connections:` (named values of those schemas)."""

from __future__ import annotations

from ..suggestions import suggest
from .context import BuildContext
from .inputs_schema import build_input_schema
from .model import ABSENT, Connection, ConnectionType
from .reader import Reader, location
from .yamlnodes import LocDict

__all__ = ["build_connection", "build_connection_type"]


def build_connection_type(data: LocDict, name: str, ctx: BuildContext) -> ConnectionType:
    """`{properties: {host: {...}}}`, or Strøm's flat shape: the properties right under the type (`{host: {...}}`),
    next to a scalar `name` or `description`."""
    r = Reader(data, ctx.problems, f"connection type {name!r}")
    if r.has("properties"):
        r.check_keys({"properties", "description", "name"})
        schema = r.mapping("properties", "{ host: { type: string, required: true } }")
    else:
        schema = _without(data, *(k for k in ("description", "name") if not isinstance(data.get(k), LocDict)))
    properties = build_input_schema(schema, ctx.problems, r.what)
    return ConnectionType(name=name, properties=properties, location=location(data.pos))


def build_connection(data: LocDict, name: str, ctx: BuildContext, types: dict[str, ConnectionType]) -> Connection:
    r = Reader(data, ctx.problems, f"connection {name!r}")
    kind = r.string("type")
    values = {k: v for k, v in data.items() if k != "type"}
    r.check_templates_in(_without(data, "type"), "connection")
    if kind is not None:
        schema = types.get(kind)
        if schema is None:
            hint = suggest(kind, types)
            r.error(
                "type",
                "unknown-type",
                f"connection type {kind!r} does not exist" + (f"; {hint}" if hint else ""),
                "define it under `connection_types:` or drop `type:`",
            )
        else:
            for key in values:
                if key not in schema.properties:
                    hint = suggest(key, schema.properties)
                    r.error(
                        key,
                        "unknown-key",
                        f"connection type {kind!r} has no property {key!r}" + (f"; {hint}" if hint else ""),
                        on_key=True,
                    )
            for key, field in schema.properties.items():
                if field.required and key not in values and field.default is ABSENT:
                    r.error(None, "missing-field", f"missing required property {key!r} of type {kind!r}")
    return Connection(name=name, type=kind, values=values, location=location(data.pos))


def _without(data: LocDict, *keys: str) -> LocDict:
    out = LocDict((k, v) for k, v in data.items() if k not in keys)
    out.pos, out.key_pos, out.val_pos = data.pos, data.key_pos, data.val_pos
    return out
