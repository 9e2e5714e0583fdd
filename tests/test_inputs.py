"""Inputs: types, defaults, options, required fields, and one message per bad field."""

from __future__ import annotations

import pytest

from runner.errors import InputError
from runner.spec.inputs import coerce, parse_pairs, resolve_inputs
from runner.spec.model import ABSENT, InputField


def field(type_, **kw):
    return InputField(name=kw.pop("name", "x"), type=type_, **kw)


@pytest.mark.parametrize(
    "type_, given, expected",
    [
        ("string", "abc", "abc"),
        ("string", 5, "5"),
        ("string", True, "true"),
        ("text", "a\nb", "a\nb"),
        ("integer", "42", 42),
        ("integer", " -7 ", -7),
        ("integer", 3.0, 3),
        ("integer", 9, 9),
        ("number", "2.5", 2.5),
        ("number", "3", 3),
        ("number", 1, 1),
        ("boolean", "true", True),
        ("boolean", "No", False),
        ("boolean", "1", True),
        ("boolean", False, False),
        ("bool", "yes", True),
        ("date", "2026-01-15", "2026-01-15"),
        ("datetime", "2026-01-15T14:30", "2026-01-15T14:30"),
        ("datetime", "2026-01-15T14:30:00Z", "2026-01-15T14:30:00Z"),
        ("json", '{"a": [1]}', {"a": [1]}),
        ("json", "plain", "plain"),
        ("json", [1, 2], [1, 2]),
    ],
)
def test_values_are_converted_to_their_type(type_, given, expected):
    assert coerce(field(type_), given) == expected


@pytest.mark.parametrize(
    "type_, given, message",
    [
        ("integer", "4.5", "expected a whole number, got '4.5'"),
        ("integer", True, "got a boolean"),
        ("number", "lots", "expected a number, got 'lots'"),
        ("boolean", "maybe", "expected true or false"),
        ("date", "15/01/2026", "expected a date like 2026-01-15"),
        ("datetime", "soon", "expected a date and time"),
        ("string", {"a": 1}, "expected text, got a mapping"),
    ],
)
def test_bad_values_get_a_clear_message(type_, given, message):
    with pytest.raises(ValueError, match=message):
        coerce(field(type_), given)


def test_options_multiple_and_custom_values():
    env = field("string", options=("staging", "production"))
    assert coerce(env, "staging") == "staging"
    with pytest.raises(ValueError, match=r"'prod' is not one of the options \(staging, production\)"):
        coerce(env, "prod")
    assert coerce(field("string", options=("a",), allow_custom=True), "zzz") == "zzz"
    many = field("string", options=("dev", "staging", "prod"), multiple=True)
    assert coerce(many, "dev,prod") == ["dev", "prod"]
    assert coerce(many, '["staging"]') == ["staging"]
    assert coerce(many, ["dev"]) == ["dev"]
    with pytest.raises(ValueError, match="'qa' is not one of"):
        coerce(many, ["dev", "qa"])
    assert coerce(field("integer", options=(1, 2, 3)), "2") == 2


def test_resolve_applies_defaults_and_lists_every_problem():
    schema = {
        "env": field("string", name="env", required=True, options=("staging", "production")),
        "replicas": field("integer", name="replicas", default=2),
        "token": field("string", name="token", default="{{ secret.T }}"),
        "note": field("string", name="note"),
    }
    values = resolve_inputs(
        schema, {"env": "staging"}, task="deploy", render_default=lambda f, src: src.replace("{{ secret.T }}", "tok")
    )
    assert values == {"env": "staging", "replicas": 2, "token": "tok"}
    with pytest.raises(InputError) as caught:
        resolve_inputs(schema, {"replicas": "two", "envv": "x"}, task="deploy")
    assert caught.value.errors == {
        "env": "required; pass it as env=<string>",
        "replicas": "expected a whole number, got 'two'",
        "envv": 'unknown input; did you mean "env"? (takes: env, replicas, token, note)',
    }
    assert "invalid input for task 'deploy':" in str(caught.value)


def test_a_task_without_inputs_refuses_them_unless_extras_are_allowed():
    with pytest.raises(InputError, match="task 't' takes no inputs"):
        resolve_inputs({}, {"a": 1}, task="t")
    assert resolve_inputs({}, {"a": 1}, task="t", allow_extra=True) == {"a": 1}


def test_key_value_pairs():
    assert parse_pairs(["a=1", "b=x=y", "c=", "d=1", "d=2"]) == {"a": "1", "b": "x=y", "c": "", "d": ["1", "2"]}
    with pytest.raises(ValueError, match="is not key=value"):
        parse_pairs(["novalue"])


def test_absent_default_is_falsy_and_distinct_from_null():
    assert not ABSENT and ABSENT is not None
