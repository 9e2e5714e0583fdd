"""Templates: Jinja2 in a sandbox, strict about typos, friendly to workflows written for Tera."""

from __future__ import annotations

import pytest

from runner.errors import TemplateError
from runner.templating import Namespace, SecretMap, evaluate, render, render_value, syntax_problems

CTX = {
    "input": Namespace("input", {"name": "bob", "items": ["a", "b"], "flag": True, "n": 3, "none": None}),
    "build": {"output": {"items": [1, 2], "version": "1.2.3", "meta": {"k": "v"}}},
    "secret": SecretMap({"API_KEY": "k3y"}),
    "steps": Namespace("steps", {"say-hello": {"output": {"greeting": "hi"}}}),
}


@pytest.mark.parametrize(
    "source, expected",
    [
        ("{{ input.items | join(sep=', ') }}", "a, b"),
        ("{{ input.items | join(', ') }}", "a, b"),
        ("{{ input.missing | default(value='x') }}", "x"),
        ("{{ input.none | default(value='x') }}", "x"),
        ("{{ input.missing | default('y') }}", "y"),
        ("{{ build.output | json_encode() }}", '{"items":[1,2],"version":"1.2.3","meta":{"k":"v"}}'),
        ("{{ build.output.meta | json_encode(pretty=true) }}", '{\n  "k": "v"\n}'),
        ("{{ 'a-b-c' | replace(from='-', to='+') }}", "a+b+c"),
        ("{{ 'a-b-c' | replace('-', '+') }}", "a+b+c"),
        ("{{ 'hello world' | truncate(length=5) }}", "hello…"),
        ("{{ 'a,b' | split(pat=',') | length }}", "2"),
        ("{{ 'v1.2' | trim_start_matches(pat='v') }}", "1.2"),
        ("{{ [1, 2, 3] | slice(start=1) | join(sep='') }}", "23"),
        ("{{ [1] | concat(with=[2]) | join(sep='') }}", "12"),
        ("{{ [1, 2, 3] | nth(n=1) }}", "2"),
        ("{{ 3.14159 | round(method='floor', precision=2) }}", "3.14"),
        ("{{ '42' | int + 1 }}", "43"),
        ("{{ input.flag }}", "true"),
        ("{{ not input.flag }}", "false"),
        ("{{ input.none }}", ""),
        ("{{ input.items }}", '["a","b"]'),
        ("{{ 'prod-eu' is starting_with('prod') }}", "true"),
        ("{{ 'prod-eu' is ending_with(pat='eu') }}", "true"),
        ("{{ input.items is containing('a') }}", "true"),
        ("{{ build.output is object }}", "true"),
        ("{{ 'x' ~ 1 }}", "x1"),
        ("{% for i in range(end=3) %}{{ i }}{% endfor %}", "012"),
        ("{% if input.missing %}yes{% else %}no{% endif %}", "no"),
        ("{{ build.output.items }}", "[1,2]"),
        ("{{ secret.api_key }}", "k3y"),
        ("{{ steps['say-hello'].output.greeting }}", "hi"),
        ('{{ "it\'s" | shell_quote }}', "'it'\"'\"'s'"),
        ("{{ input.items | shell_quote }}", "a b"),
        ("{{ 'a b; rm -rf /' | shell_quote }}", "'a b; rm -rf /'"),
        ("{{ {'b': 1, 'a': [1]} | tojson }}", '{"b": 1, "a": [1]}'),
        ("{{ 'Héllo Wörld!' | slugify }}", "hello-world"),
        ("{{ 0 | date(format='%Y') }}", "1970"),
        ("plain text, no template", "plain text, no template"),
    ],
)
def test_rendering(source, expected):
    assert render(source, CTX) == expected


def test_a_lone_expression_keeps_lists_and_mappings():
    assert evaluate("{{ build.output.items }}", CTX) == [1, 2]
    assert evaluate("  {{ build.output.meta }} ", CTX) == {"k": "v"}
    assert evaluate("{{ build.output.version }}", CTX) == "1.2.3"
    assert evaluate("{{ input.n }}", CTX) == "3"
    assert evaluate("v{{ build.output.items }}", CTX) == "v[1,2]"
    assert render_value({"a": ["{{ input.name }}", {"b": "{{ build.output.items }}"}], "n": 1}, CTX) == {
        "a": ["bob", {"b": [1, 2]}],
        "n": 1,
    }


def test_data_keys_win_over_mapping_methods():
    assert evaluate("{{ fetch.output.items }}", {"fetch": {"output": {"items": ["x"]}}}) == ["x"]
    assert render("{{ d.keys }}", {"d": {"keys": "k"}}) == "k"


@pytest.mark.parametrize(
    "source, message",
    [
        ("{{ input.nmae }}", "input has no field 'nmae' (it has: flag, items, n, name, none)"),
        ("{{ secret.db_password }}", "secret 'db_password' is not set; export STROM_SECRET_DB_PASSWORD"),
        ("{{ nothing.at.all }}", "'nothing' is undefined"),
        ("{{ input.missing == 'x' }}", "input has no field 'missing'"),
        ("{% for x in input.missing %}{% endfor %}", "input has no field 'missing'"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ x ", "syntax error on template line 1"),
    ],
)
def test_errors_say_what_is_missing_and_where(source, message):
    with pytest.raises(TemplateError) as caught:
        render(source, CTX, where=".strom/ci.yaml:3:9 (task 't', step 's', field 'script')")
    assert message in str(caught.value)
    assert str(caught.value).startswith("template error in .strom/ci.yaml:3:9 (task 't', step 's', field 'script'): ")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ input.items.append(3) }}",
        "{{ build.output.update({'x': 1}) }}",
        "{{ range(10**9) | list }}",
    ],
)
def test_the_sandbox_refuses_unsafe_or_mutating_operations(source):
    with pytest.raises(TemplateError):
        render(source, CTX)
    assert CTX["input"]["items"] == ["a", "b"]


def test_rendered_values_are_never_rendered_again():
    ctx = {"input": Namespace("input", {"title": "{{ secret.API_KEY }}"}), "secret": SecretMap({"API_KEY": "k"})}
    assert render("{{ input.title }}", ctx) == "{{ secret.API_KEY }}"
    assert render_value({"a": "{{ input.title }}"}, ctx) == {"a": "{{ secret.API_KEY }}"}


def test_syntax_checks_find_errors_and_unknown_filters_without_rendering():
    assert syntax_problems("echo {{ input.name | upper }}") == ()
    assert syntax_problems("{% if x %}a{% endif %}") == ()
    assert syntax_problems("no template here {not one}") == ()
    assert syntax_problems("{{ x | uper }}") == ("unknown filter 'uper'; did you mean \"upper\"?",)
    assert syntax_problems("{{ x is strting_with('a') }}")[0].startswith("unknown test 'strting_with'")
    assert syntax_problems("{% if x %}unclosed")[0].startswith("template line 1:")
    assert syntax_problems('{{ "}}" }}') == ()
