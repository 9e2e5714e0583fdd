"""YAML positions, duplicates, merges and tags; the JSON Schema accepts good files and rejects bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from runner.spec.problems import Problems
from runner.spec.schema import json_schema
from runner.spec.yamlnodes import parse_yaml

ROOT = Path(__file__).parent.parent


def parse(text):
    problems = Problems()
    return parse_yaml(text, "f.yaml", problems), problems.items


def test_positions_of_keys_and_values_are_one_based():
    doc, problems = parse("a:\n  b: [1, two]\n  c: { d: true }\n")
    assert problems == []
    assert doc == {"a": {"b": [1, "two"], "c": {"d": True}}}
    assert doc.key_at("a") == ("f.yaml", 1, 1)
    assert doc["a"].at("b") == ("f.yaml", 2, 6) and doc["a"]["b"].at(1) == ("f.yaml", 2, 10)
    assert doc["a"]["c"].at("d") == ("f.yaml", 3, 11)


def test_scalars_follow_yaml_1_2():
    doc, _ = parse("a: yes\nb: on\nc: 0x10\nd: 1_000\ne: .inf\nf: ~\ng: 2026-01-15\nh: '1'\ni: 1.5\n")
    assert doc == {
        "a": "yes",
        "b": "on",
        "c": 16,
        "d": 1000,
        "e": float("inf"),
        "f": None,
        "g": "2026-01-15",
        "h": "1",
        "i": 1.5,
    }


def test_every_duplicate_key_is_reported_with_both_positions():
    doc, problems = parse("a: 1\nb: 2\na: 3\nb: 4\n")
    assert doc == {"a": 1, "b": 2}
    assert [(p.line, p.column, p.message) for p in problems] == [
        (3, 1, "duplicate key 'a' (first defined at line 1, column 1)"),
        (4, 1, "duplicate key 'b' (first defined at line 2, column 1)"),
    ]


def test_anchors_aliases_and_merge_keys():
    doc, problems = parse("base: &b { type: script, script: 'true' }\nx:\n  <<: *b\n  script: 'false'\ny: *b\n")
    assert problems == []
    assert doc["x"] == {"type": "script", "script": "false"} and doc["y"] == {"type": "script", "script": "true"}


def test_custom_tags_and_syntax_errors_are_problems():
    _, problems = parse("a: !secret x\n")
    assert problems[0].code == "yaml-tag" and "unsupported YAML tag '!secret'" in problems[0].message
    doc, problems = parse("a: [1, 2\nb: 3\n")
    assert doc is None and problems[0].code == "yaml-syntax" and problems[0].line == 2
    _, problems = parse("a: 1\n---\nb: 2\n")
    assert "one YAML document" in problems[0].hint


def test_alias_bombs_are_refused():
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    doc, problems = parse("\n".join(lines) + "\n")
    assert doc is None and problems[0].code == "yaml-too-large"


@pytest.fixture(scope="module")
def validator():
    schema = json_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _doc(text):
    return json.loads(json.dumps(YAML(typ="safe").load(text), default=str))


def test_this_projects_pipeline_matches_the_schema(validator):
    for path in sorted((ROOT / ".strom").rglob("*.yaml")):
        errors = list(validator.iter_errors(_doc(path.read_text())))
        assert not errors, f"{path}: {errors[0].message}"


@pytest.mark.parametrize(
    "text",
    [
        "tasks: { t: { flow: { a: { type: script, script: x, cmd: y } } } }",
        "actions: { a: { type: docker } }",
        "tasks: { t: { flow: { a: { action: x, script: y } } } }",
        "tasks: { t: {} }",
        "triggers: { n: { type: scheduler, task: t, branches: [main] } }",
        "actions: { a: { type: script, script: x, timeout: 'ten minutes' } }",
        "unknown: 1",
    ],
)
def test_the_schema_rejects_what_the_validator_rejects(validator, text):
    assert list(validator.iter_errors(_doc(text)))
