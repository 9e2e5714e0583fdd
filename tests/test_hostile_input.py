"""What strangers send: webhook bodies mutated every way (signed and not), YAML bombs, template bombs.

The webhook fuzzing starts from the real fixtures of each forge and mutates them (fields removed,
retyped, made huge, made to nest deeply, filled with control characters, lone surrogates and
digits that are not ASCII), signs about half, and sends them to the app. Every answer must be a
2xx or a 4xx with a reason, within 2 s, with no traceback logged; a 2xx names events that are
stored. Bombs must fail with a clear error within a deadline.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import pytest
from forge_fixtures import CASES, NOT_JSON, SECRET, forge_headers
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_env import make_config

from runner.errors import TemplateError
from runner.forges import parser_for
from runner.spec import load_texts
from runner.templating import render
from webhooks.app import create_app

FUZZED = {"requests": 0, "5xx": 0, "worst_seconds": 0.0}
JSON_CASES = [c for c in CASES if c.path != NOT_JSON]
NEST = "\x00nest\x00"
ODD = [
    "²",
    "٣",
    "\x00",
    "\ud800",
    "x" * 200_000,
    "../../etc/passwd",
    "--output=/tmp/x",
    "refs/heads/a..b",
    "refs/heads/\x1cmain",
    "a\nb",
    "@{",
    "-1",
    "1e309",
    "",
    " ",
    "🙂" * 1000,
]


def _repos() -> dict[str, list[str]]:
    out: dict[str, set] = {}
    for case in JSON_CASES:
        repo = parser_for(case.forge).repository(forge_headers(case, case.body()), case.body())
        if repo:
            out.setdefault(case.forge, set()).add(repo)
    return {forge: sorted(repos) for forge, repos in out.items()}


@pytest.fixture(scope="module")
def app(tmp_path_factory, redis_server):
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    root = tmp_path_factory.mktemp("ws")
    (root / ".strom").mkdir()
    (root / ".strom" / "ci.yaml").write_text("tasks:\n  ci: { flow: { s: { type: script, script: 'true' } } }\n")
    api = {"gitea": {"api": "http://127.0.0.1:9/api/v1", "token": "gitea-token"}}  # never called: nothing is processed
    spaces = {
        f"{forge}-{i}": {
            "folder": str(root),
            "forge": {"type": forge, "repo": repo, "webhook_secrets": [SECRET], **api.get(forge, {})},
        }
        for forge, repos in _repos().items()
        for i, repo in enumerate(repos)
    }
    config = make_config(root, redis_server.url, STROM_WORKSPACES=json.dumps(spaces))
    flask_app = create_app(config)
    flask_app.config["TESTING"] = False  # errors answer as in production
    return flask_app


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            yield from _paths(item, prefix + (index,))


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.sampled_from(ODD),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
    st.just(NEST),
)


@st.composite
def mutated(draw):
    case = draw(st.sampled_from(JSON_CASES))
    data = json.loads(case.body())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(data))[1:] or [()]))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(LEAVES)
    depth = draw(st.sampled_from([0, 0, 50, 5000, 100_000]))
    body = json.dumps(data).replace(json.dumps(NEST), "[" * depth + "]" * depth if depth else "null")
    return case, body.encode("utf-8", "surrogatepass"), draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(sent=mutated())
def test_a_mutated_webhook_is_stored_or_refused_with_a_reason_never_crashes(app, caplog, sent):
    case, body, signed = sent
    caplog.clear()
    headers = forge_headers(case, body, SECRET if signed else None, delivery=str(uuid.uuid4()))
    start = time.monotonic()
    with caplog.at_level(logging.ERROR):
        answer = app.test_client().post(f"/webhooks/{case.forge}", data=body, headers=headers)
    took = time.monotonic() - start
    FUZZED["requests"] += 1
    FUZZED["5xx"] += answer.status_code >= 500
    FUZZED["worst_seconds"] = max(FUZZED["worst_seconds"], took)
    assert answer.status_code < 500, answer.get_data(as_text=True)[:500]
    assert took < 2.0
    assert not [r for r in caplog.records if r.exc_info], "no traceback is logged for a stranger's request"
    data = answer.get_json()
    if answer.status_code == 202:
        service = app.extensions["strom"]
        for entry in data.get("events") or [data]:
            assert service.repo_events.load(entry["id"]) is not None
    elif answer.status_code >= 400:
        assert data["error"]["message"], "every refusal says why"
    if not signed:
        assert answer.status_code in (400, 401), "an unsigned body is never read further than its headers"


def test_fuzzing_figures():
    """Printed with -s, for the record: how much was fuzzed and the worst answer."""
    print(
        f"\nwebhooks fuzzed: {FUZZED['requests']}, 5xx: {FUZZED['5xx']}, "
        f"worst answer: {FUZZED['worst_seconds'] * 1000:.0f} ms"
    )
    assert FUZZED["5xx"] == 0


def test_an_unsigned_deeply_nested_or_huge_body_is_refused_before_it_is_parsed(app):
    client = app.test_client()
    case = next(c for c in JSON_CASES if c.path == "github/push.branch.json")
    nested = b"[" * 1_000_000 + b"]" * 1_000_000
    answer = client.post("/webhooks/github", data=nested, headers=forge_headers(case, nested, None))
    assert answer.status_code == 401
    signed = client.post("/webhooks/github", data=nested, headers=forge_headers(case, nested))
    assert signed.status_code == 400 and "nests deeper" in signed.get_json()["error"]["message"]
    huge = b"{" + b" " * (11 * 1024 * 1024) + b"}"
    answer = client.post("/webhooks/github", data=huge, headers=forge_headers(case, huge))
    assert answer.status_code == 413


# ----------------------------------------------------------------------------- workflow files


def _load_within(texts: dict[str, str], seconds: float):
    start = time.monotonic()
    result = load_texts(texts)
    assert time.monotonic() - start < seconds
    return [p.format() for p in result.errors]


@pytest.mark.parametrize(
    "text",
    [
        "tasks: " + "[" * 60_000 + "]" * 60_000,
        "- " * 60_000 + "x",
        "a: " + "{b: " * 70_000,
        "name: it's\nx: " + "[" * 40_000 + "]" * 40_000,  # a quote earlier in the file fools a scan of the text
        "a: '\n" + "  - " * 30_000 + "x",
    ],
)
def test_yaml_nesting_bombs_are_refused_before_the_document_is_composed(text):
    errors = _load_within({".strom/bomb.yaml": text}, 2)
    assert (errors and "nests deeper than 64 levels here" in errors[0]) or "YAML syntax error" in errors[0], errors


def test_a_deep_document_is_refused_at_the_place_it_gets_too_deep():
    errors = _load_within({".strom/deep.yaml": "tasks: " + "[" * 100 + "]" * 100}, 2)
    assert errors[0].startswith(".strom/deep.yaml:1:72: error: the document nests deeper than 64 levels here")


@pytest.mark.parametrize(
    "text",
    [
        "x: [" + ",".join(["1"] * 1_500_000) + "]",
        "x:\n" + "- 1\n" * 900_000,
        "x: {" + ",".join(f"k{i}: 1" for i in range(300_000)) + "}",
    ],
)
def test_a_long_document_is_refused_before_it_is_composed(text):
    errors = _load_within({".strom/long.yaml": text}, 2)
    assert len(errors) == 1 and "error: the document holds more than 200000 YAML nodes" in errors[0], errors
    assert "raise limits.yaml_nodes" in errors[0]


def test_thousands_of_workflow_files_are_refused_at_once():
    errors = _load_within({f".strom/f{i:05}.yaml": "{}" for i in range(20_000)}, 2)
    assert errors == [
        ".strom:1:1: error: there are more than 1000 workflow files\n"
        "    fix: merge or remove some, or raise limits.workflow_files in the server configuration"
    ]


def test_an_alias_bomb_of_scalars_is_counted_in_bytes():
    anchor = "x" * 1024 * 1024
    text = f"tasks:\n  t:\n    flow:\n      s: {{ type: script, script: &big {anchor} }}\n" + "".join(
        f"      s{i}: {{ type: script, script: *big }}\n" for i in range(3000)
    )
    errors = _load_within({".strom/aliases.yaml": text}, 5)
    assert any("with its aliases expanded, exceeds 33554432 bytes here" in e for e in errors), errors[:3]


def test_workflow_size_and_count_limits_name_the_limit_and_the_place():
    errors = _load_within({".strom/big.yaml": "# " + "x" * (5 * 1024 * 1024)}, 2)
    assert errors == [
        ".strom/big.yaml:1:1: error: the file is 5242882 bytes, above the limit of 4194304\n"
        "    fix: split it, or raise limits.workflow_file_size in the server configuration"
    ]
    many = "tasks:\n" + "".join(
        f"  t{i}: {{ flow: {{ s: {{ type: script, script: 'true' }} }} }}\n" for i in range(2001)
    )
    errors = _load_within({".strom/many.yaml": many}, 10)
    assert errors == [
        ".strom/many.yaml:2002:3: error: the workspace defines more than 2000 tasks (task 't2000' is "
        "past the limit)\n    fix: remove some, or raise limits.tasks in the server configuration"
    ]


# ----------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    "template, message",
    [
        ("{{ 10 ** (10 ** 7) }}", "10 ** 10000000: templates may not make something that large"),
        ("{{ 'x' * 10 ** 9 }}", "repeating a str of 1 1000000000 times"),
        ("{{ [0] * 10 ** 9 }}", "repeating a list of 1 1000000000 times"),
        ("{{ '%0999999999d' % 1 }}", "a width of 999999999"),
        ("{{ '{:999999999}'.format(1) }}", "a width of 999999999"),
        ("{{ 'x'.center(10 ** 9) }}", "str.center to a width of 1000000000"),
        ("{{ 'x' | center(10 ** 9) }}", "center to a width of 1000000000"),
        ("{{ 'x' | indent(10 ** 9) }}", "indent to a width of 1000000000"),
        ("{{ lipsum(n=100000) }}", "lipsum: at most 100 paragraphs"),
        ("{{ range(10) | slice(10 ** 9) | list }}", "slicing into 1000000000 lists"),
        ("{{ ('a' * 26 ~ '!') is matching('^(a|a)*$') }}", "took longer than 0.25s (it backtracks too much)"),
        ("{{ [[0] * 100000] * 100000 }}", "a structure of more than 1000000 items"),
        ("{{ [[0] * 100000] * 100000 | sum(start=[]) }}", "sum adds numbers"),
        ("{{ (['x' * 1000000] * 20000) | unique | list | length }}", "ran longer than 2s"),
        ("{{ 'x'.encode().ljust(2000000000) }}", "bytes.ljust to a width of 2000000000"),
        ("{{ 'x'.encode() * 10 ** 10 }}", "repeating a bytes of 1 10000000000 times"),
        ("{{ '{0:>{1}}'.format('a', 2000000000) }}", "a format field inside a format spec"),
        ("{{ '{:>0000000000002000000000}'.format('a') }}", "a width of 0000000000002000000000"),
        ("{{ '%.00000000002000000000d' % 1 }}", "a width of 00000000002000000000"),
        ("{{ ('%(a)s' * 100000) % {'a': 'x' * 1000} }}", "this format"),
        ("{{ ('{0}' * 100000).format('x' * 1000) }}", "this format"),
        ("{{ ('x' * 1000000).translate({120: 'y' * 10000}) }}", "this translation"),
        ("{{ ('\t' * 100000).expandtabs(10000) }}", "expanding these tabs"),
        ("{{ ','.join(['x' * 100000] * 100) }}", "joining 100 items"),
        ("{{ range(100000) | map('center', 10000) | join }}", "this join"),
        ("{% set a = 'x' * 1000000 %}{{ a ~ a ~ a ~ a ~ a ~ a ~ a ~ a }}", "this concatenation (~)"),
        (
            "{% set ns = namespace(x='ab') %}{% for i in range(40) %}{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
            "this concatenation (~)",
        ),
        ("{{ ('x\n' * 500000) | indent(10000) }}", "this replacement"),
        ("{{ ('x ' * 500000) | wordwrap(1, wrapstring='y' * 1000) }}", "wordwrap: this wrapstring"),
        ("{{ range(10) | batch(10 ** 9, 0) | list }}", "batch takes a count from 1 to 100000"),
        ("{{ [1] | tojson(indent=10 ** 9) }}", "tojson indent to a width of 1000000000"),
        ("{{ 0 | date(format='%999999999Y') }}", "a width of 999999999"),
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "ran longer than 2s"),
        (
            "{% set x = range(100000) | list %}{% for i in x %}{% for j in x %}{% endfor %}{% endfor %}",
            "ran longer than 2s",
        ),
        ("{% for i in range(100000) %}{{ 'x' * 1000 }}{% endfor %}", "output of more than 4194304 characters"),
        ("{{ [cycler] | group_by(attribute='__init__.__globals__.os.environ') }}", None),
    ],
)
def test_template_bombs_end_with_an_error_in_time(template, message):
    start = time.monotonic()
    if message is None:  # the sandbox reaches no attribute through a filter: nothing comes out
        assert render(template, {}) == "{}"
    else:
        with pytest.raises(TemplateError) as failure:
            render(template, {}, "bomb")
        assert message in str(failure.value)
    assert time.monotonic() - start < 3


def test_what_git_allows_in_a_push_never_refuses_the_push():
    from runner.forges.bounds import checked
    from runner.forges.event import RepoEvent

    commit = {
        "id": "a" * 40,
        "message": "m",
        "author": "A. " + "Very-Long-Name " * 30,
        "added": ["notes\tv2.txt"],
        "removed": [],
        "modified": ["src/app.py"],
    }
    event = checked(
        RepoEvent(
            source="github",
            kind="push",
            repo="o/r",
            ref="refs/heads/main",
            branch="main",
            sha="b" * 40,
            commits=(commit,),
            changed_files=("notes\tv2.txt", "src/app.py"),
        )
    )
    assert len(event.commits[0]["author"]) == 255, "a long author name is cut, not refused"
    assert event.changed_files is None and event.commits[0]["added"] == [], (
        "a file name with a tab drops the lists: the changed files are then computed from the mirror"
    )
