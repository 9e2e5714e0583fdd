"""The JSON Schema of .strom/*.yaml files, generated from the field tables (for editors)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .fields import (
    ACTION_FIELDS,
    ACTION_TYPE_FIELDS,
    ACTION_TYPE_REQUIRED,
    HOOK_FIELDS,
    INPUT_FIELDS,
    NOTIFY_RULE_FIELDS,
    RESOURCE_FIELDS,
    RETRY_FIELDS,
    STAGE_FIELDS,
    STEP_FIELDS,
    TASK_FIELDS,
    TOP_LEVEL_FIELDS,
    TRIGGER_FIELDS,
    TRIGGER_TYPE_FIELDS,
    Field,
)

__all__ = ["SCHEMA_ID", "json_schema"]

SCHEMA_ID = "https://strom.dev/schema/workflow.json"
_DURATION_PATTERN = r"^(\d+|(\d+(\.\d+)?(ms|s|m|h|d))+)$"
_SCALAR = {"type": ["string", "number", "boolean", "null"]}

Schema = dict[str, Any]  # a JSON Schema, or a part of one


def _ref(name: str) -> Schema:
    return {"$ref": f"#/definitions/{name}"}


def _kind(field: Field) -> Schema:
    kind = field.kind
    simple: dict[str, Schema] = {
        "string": {"type": ["string", "number"]},
        "template": {"type": "string"},
        "boolean": {"type": "boolean"},
        "integer": {"type": "integer"},
        "number": {"type": "number"},
        "duration": _ref("duration"),
        "string_list": {"type": "array", "items": {"type": ["string", "number"]}},
        "template_list": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
        "env_map": {"type": "object", "additionalProperties": _SCALAR},
        "values_map": {"type": "object"},
        "mapping": {"type": "object"},
        "map": {"type": "object"},
        "any": {},
        "list": {"type": "array"},
        "input_schema": _ref("input_schema"),
        "output_schema": {"type": "object"},
        "retry": _ref("retry"),
        "resources": _ref("resources"),
        "hooks": _ref("hooks"),
        "notify_rules": _ref("notify_rules"),
        "for_each": {"type": ["array", "string"]},
        "flow": {"type": "object"},
        "stages": {"type": "array"},
        "status_list": {"oneOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}}]},
    }
    if kind == "choice":
        return {"enum": list(field.choices)}
    return dict(simple[kind])


def _flow(doc: str) -> Schema:
    return {"type": "object", "minProperties": 1, "additionalProperties": _ref("step"), "description": doc}


def _properties(fields: dict[str, Field]) -> Schema:
    return {name: {**_kind(f), "description": f.doc} for name, f in fields.items()}


def _only(names: Iterable[str]) -> Schema:
    return {"propertyNames": {"enum": sorted(names)}}


def _action_variants(extra: set[str]) -> list[Schema]:
    variants = []
    for kind, names in ACTION_TYPE_FIELDS.items():
        then = _only(set(names) | extra)
        if ACTION_TYPE_REQUIRED.get(kind):
            then["required"] = list(ACTION_TYPE_REQUIRED[kind])
        if kind == "script":
            then["oneOf"] = [{"required": ["script"]}, {"required": ["source"]}]
        variants.append({"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": then})
    return variants


def json_schema() -> Schema:
    step_only = dict(STEP_FIELDS.items())
    step_props = {**_properties(ACTION_FIELDS), **_properties(step_only)}
    inline_extra = set(STEP_FIELDS) - {"action"}
    trigger_variants = [
        {"if": {"properties": {"type": {"const": kind}}, "required": ["type"]}, "then": _only(names)}
        for kind, names in TRIGGER_TYPE_FIELDS.items()
    ]
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": SCHEMA_ID,
        "title": "Strom workflow file (.strom/*.yaml)",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "actions": {
                "type": "object",
                "additionalProperties": _ref("action"),
                "description": TOP_LEVEL_FIELDS["actions"].doc,
            },
            "tasks": {
                "type": "object",
                "additionalProperties": _ref("task"),
                "description": TOP_LEVEL_FIELDS["tasks"].doc,
            },
            "triggers": {
                "type": "object",
                "additionalProperties": _ref("trigger"),
                "description": TOP_LEVEL_FIELDS["triggers"].doc,
            },
            "secrets": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "description": TOP_LEVEL_FIELDS["secrets"].doc,
            },
            "connection_types": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"properties": _ref("input_schema"), "description": {"type": "string"}},
                    "additionalProperties": False,
                },
            },
            "connections": {"type": "object", "additionalProperties": {"type": "object"}},
            **{
                event: {**_ref("hooks"), "description": TOP_LEVEL_FIELDS[event].doc}
                for event in ("on_success", "on_error", "on_cancel", "on_suspended")
            },
            "notify": {**_ref("notify_rules"), "description": TOP_LEVEL_FIELDS["notify"].doc},
        },
        "definitions": {
            "duration": {
                "description": "15s, 5m, 1h30m, 24h, 7d, or whole seconds",
                "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": _DURATION_PATTERN}],
            },
            "input_field": {
                "type": "object",
                "required": ["type"],
                "additionalProperties": False,
                "properties": _properties(INPUT_FIELDS),
            },
            "input_schema": {"type": "object", "additionalProperties": _ref("input_field")},
            "retry": {
                "oneOf": [
                    {"type": "integer", "minimum": 1, "maximum": 10},
                    {"type": "object", "additionalProperties": False, "properties": _properties(RETRY_FIELDS)},
                ]
            },
            "resources": {"type": "object", "additionalProperties": False, "properties": _properties(RESOURCE_FIELDS)},
            "hook": {
                "type": "object",
                "required": ["action"],
                "additionalProperties": False,
                "properties": _properties(HOOK_FIELDS),
            },
            "hooks": {"type": "array", "items": _ref("hook")},
            "notify_rules": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["channels"],
                    "additionalProperties": False,
                    "properties": _properties(NOTIFY_RULE_FIELDS),
                },
            },
            "action": {
                "type": "object",
                "required": ["type"],
                "properties": _properties(ACTION_FIELDS),
                "allOf": _action_variants(set()),
            },
            "step": {
                "type": "object",
                "properties": step_props,
                "oneOf": [{"required": ["action"]}, {"required": ["type"]}],
                "allOf": [{"if": {"required": ["action"]}, "then": _only(STEP_FIELDS)}]
                + _action_variants(inline_extra),
            },
            "task": {
                "type": "object",
                "oneOf": [{"required": ["flow"]}, {"required": ["stages"]}],
                "additionalProperties": False,
                "properties": {
                    **_properties(TASK_FIELDS),
                    "flow": _flow(TASK_FIELDS["flow"].doc),
                    "stages": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["name", "steps"],
                            "additionalProperties": False,
                            "properties": {**_properties(STAGE_FIELDS), "steps": _flow(STAGE_FIELDS["steps"].doc)},
                        },
                        "description": TASK_FIELDS["stages"].doc,
                    },
                },
            },
            "trigger": {
                "type": "object",
                "required": ["type", "task"],
                "properties": _properties(TRIGGER_FIELDS),
                "allOf": trigger_variants,
            },
        },
    }
