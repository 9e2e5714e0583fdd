"""Every filter, test and global Strom adds to templates, called with hostile arguments.

Workflow authors and (through `/ok-to-test`) fork pull requests write templates that the worker
and the web process render. No custom filter may walk into an object's insides (`__globals__`,
`__class__`, `__mro__`): they all reach attributes through the sandbox. A call either renders
plain data or fails with a TemplateError, quickly; the process environment never shows up.
"""

from __future__ import annotations

import itertools
import time

import pytest

from runner.errors import TemplateError
from runner.templating import render
from runner.tera_compat import FILTERS, GLOBALS, TESTS

CANARY = "canary-7f3a91c4e5"
PATHS = [
    "__init__.__globals__.os.environ",
    "__class__.__mro__",
    "__globals__",
    "__class__.__subclasses__",
    "__init__.__globals__.__builtins__",
    "gi_frame.f_globals",
    "__self__.__dict__",
    "_label",
]
VALUES = [
    "cycler",
    "[cycler]",
    "{'a': cycler}",
    "[{'a': cycler}]",
    "joiner",
    "namespace()",
    "lipsum",
    "'%(a)s %0999999999d'",
    "[[1], [2]]",
    "'x'",
    "range",
]
ARGUMENTS = (
    [f"attribute='{p}'" for p in PATHS]
    + [f"'{p}'" for p in PATHS]
    + [f"key='{p}'" for p in PATHS]
    + [
        "10 ** 9",
        "'%0999999999d'",
        "'{0.__class__.__mro__}'",
        "'{:999999999}'",
        "cycler",
        "sep=cycler",
        "pat='(a+)+$'",
        "divisor='%0999999999d'",
        "value=cycler",
        "format='%999999999Y'",
    ]
)


def _leaks(text: str) -> bool:
    """The environment, a module or a namespace of globals in the output (a class's name is harmless)."""
    return CANARY in text or "<module" in text or "'__builtins__':" in text or '"__builtins__":' in text


def _attempt(template: str) -> str:
    start = time.monotonic()
    try:
        text = render(template, {})
    except TemplateError as exc:
        text = str(exc)
    assert time.monotonic() - start < 3, template
    return text


@pytest.fixture(autouse=True)
def canary(monkeypatch):
    monkeypatch.setenv("STROM_CANARY", CANARY)


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_no_custom_filter_reaches_an_objects_insides(name):
    for value, argument in itertools.product(VALUES, ARGUMENTS):
        text = _attempt(f"{{{{ {value} | {name}({argument}) }}}}")
        assert not _leaks(text), (value, argument, text)


@pytest.mark.parametrize("name", sorted(TESTS))
def test_no_custom_test_reaches_an_objects_insides(name):
    for value, argument in itertools.product(VALUES, ARGUMENTS):
        text = _attempt(f"{{{{ {value} is {name}({argument}) }}}}")
        assert not _leaks(text), (value, argument, text)


@pytest.mark.parametrize("name", sorted(GLOBALS))
def test_no_custom_function_reaches_an_objects_insides(name):
    for argument in ARGUMENTS:
        text = _attempt(f"{{{{ {name}({argument}) }}}}")
        assert not _leaks(text), (argument, text)


def test_jinjas_own_attribute_filters_stay_inside_the_sandbox():
    for template in (
        "{{ [cycler] | map(attribute='__init__.__globals__') | list }}",
        "{{ [cycler] | sort(attribute='__init__.__globals__') }}",
        "{{ [cycler] | selectattr('__init__.__globals__') | list }}",
        "{{ [cycler] | groupby('__init__.__globals__') }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ ''.__class__.__mro__ }}",
    ):
        text = _attempt(template)
        assert not _leaks(text), (template, text)


def test_group_by_still_groups_plain_data():
    template = "{{ items | group_by(attribute='meta.kind') }}"
    items = [{"meta": {"kind": "a"}, "n": 1}, {"meta": {"kind": "b"}, "n": 2}, {"meta": {"kind": "a"}, "n": 3}]
    assert render(template, {"items": items}) == (
        '{"a":[{"meta":{"kind":"a"},"n":1},{"meta":{"kind":"a"},"n":3}],"b":[{"meta":{"kind":"b"},"n":2}]}'
    )
