"""Batches: task name patterns, a task step with `pattern:` (one child run per matching task, outputs
aggregated like for_each), and starting every matching task from the API and `strom trigger 'deploy-*'`."""

from __future__ import annotations

import time

import pytest
import requests
from conftest import Sim, load
from hypothesis import given, settings
from hypothesis import strategies as st
from service_env import TOKENS, make_config, remote_cli, serving, stack, wait_for

from runner.engine import ChildFinished, RunStatus, StartChild
from runner.spec.patterns import PatternError, is_task_pattern, matching_names

NAMES = ["build", "db-a", "db-b", "deploy-eu", "deploy-us", "deploy-all"]


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("deploy-*", ["deploy-all", "deploy-eu", "deploy-us"]),
        ("deploy-eu,deploy-us", ["deploy-eu", "deploy-us"]),
        (" db-? , build ", ["build", "db-a", "db-b"]),
        ("^deploy-(eu|us)$", ["deploy-eu", "deploy-us"]),
        ("^d.*$,build", ["build", "db-a", "db-b", "deploy-all", "deploy-eu", "deploy-us"]),
        ("[bd]b-*", ["db-a", "db-b"]),
        ("deploy", []),
        ("^deploy$", []),
    ],
)
def test_patterns_are_globs_or_anchored_regular_expressions(pattern, expected):
    assert matching_names(pattern, NAMES) == expected
    assert is_task_pattern(pattern) is (pattern != "deploy")


@pytest.mark.parametrize(
    "pattern, words",
    [("", "empty"), ("a,,b", "empty item"), ("^(a$", "not a regular expression"), ("x" * 501, "longer than")],
)
def test_a_bad_pattern_says_what_is_wrong(pattern, words):
    with pytest.raises(PatternError, match=words):
        matching_names(pattern, NAMES)


def test_a_pattern_that_backtracks_for_ever_is_stopped():
    started = time.monotonic()
    with pytest.raises(PatternError, match="backtracks too much"):
        matching_names("^(a|aa)+$", ["a" * 60 + "b"])
    assert time.monotonic() - started < 5


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60), st.lists(st.text(max_size=20), max_size=10))
def test_any_pattern_gives_names_or_a_pattern_error(pattern, names):
    try:
        found = matching_names(pattern, names)
    except PatternError as exc:
        assert str(exc)
        return
    assert found == sorted(set(found)) and set(found) <= set(names)


PATTERNED = """
tasks:
  deploy-eu:
    input: { version: { type: string, required: true } }
    flow: { go: { type: script, script: "echo eu {{ input.version }}" } }
  deploy-us:
    input: { version: { type: string, required: true }, canary: { type: boolean, default: false } }
    flow: { go: { type: script, script: "echo us {{ input.version }}" } }
  deploy-all:
    flow:
      all: { type: task, pattern: "deploy-*", input: { version: "1.2", canary: true } }
      report: { type: script, script: "echo done", depends_on: [all] }
"""


def test_a_pattern_step_runs_each_matching_task_but_its_own_with_the_inputs_each_declares():
    task = load(PATTERNED).workspace.tasks["deploy-all"]
    assert task.flow["all"].for_each == ["deploy-eu", "deploy-us"], "never the task itself"
    sim = Sim(PATTERNED, "deploy-all")
    sim.start()
    children = sorted((c.task, dict(c.inputs)) for c in sim.history if isinstance(c, StartChild))
    assert children == [("deploy-eu", {"version": "1.2"}), ("deploy-us", {"version": "1.2", "canary": True})]
    starts = {c.task: c for c in sim.history if isinstance(c, StartChild)}
    sim.send(ChildFinished("all[1]", starts["deploy-us"].child_job, RunStatus.SUCCEEDED, output={"r": "us"}))
    sim.send(ChildFinished("all[0]", starts["deploy-eu"].child_job, RunStatus.SUCCEEDED, output={"r": "eu"}))
    assert sim.state.steps["all"].output == [{"r": "eu"}, {"r": "us"}], "outputs in the order of the task names"
    assert sim.dispatched() == ["report"]


@pytest.mark.parametrize(
    "step, code, words",
    [
        ('{ type: task, pattern: "nothing-*" }', "unknown-task", "matches no task"),
        ('{ type: task, pattern: "^(x$" }', "bad-value", "not a regular expression"),
        ('{ type: task, pattern: "d*", task: d1 }', "conflict", "`task:` or `pattern:`"),
        ('{ type: task, pattern: "d*", for_each: [1, 2] }', "conflict", "cannot have `for_each`"),
        ("{ type: task }", "missing-field", "pattern: deploy-*"),
    ],
)
def test_pattern_mistakes_are_validation_errors(step, code, words):
    result = load(
        f"tasks:\n  d1:\n    flow: {{ a: {{ type: script, script: x }} }}\n  t:\n    flow:\n      s: {step}\n"
    )
    found = [p for p in result.errors if p.code == code]
    assert found and words in found[0].message + found[0].hint, [p.format() for p in result.problems]
    assert found[0].line == 6


WORKSPACE = {".strom/d.yaml": PATTERNED}


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service, serving(config, service) as server:
        yield service, server


def _auth(role="operator"):
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def finished(service, run_id):
    return wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=30, what=run_id)


def test_the_batch_api_starts_every_match_and_says_which_could_not_start(live):
    service, server = live
    url = f"{server.url}/api/workspaces/local/batch"
    started = requests.post(url, json={"pattern": "deploy-eu,deploy-us", "input": {"version": "9"}}, headers=_auth())
    assert started.status_code == 201, started.text
    body = started.json()
    assert sorted(run["task"] for run in body["runs"]) == ["deploy-eu", "deploy-us"] and body["refused"] == {}
    for run in body["runs"]:
        state = finished(service, run["id"])
        assert state.status is RunStatus.SUCCEEDED and state.inputs["version"] == "9"
        assert state.event["batch"] == "deploy-eu,deploy-us"
    partial = requests.post(url, json={"pattern": "deploy-*"}, headers=_auth()).json()
    assert [run["task"] for run in partial["runs"]] == ["deploy-all"]
    assert sorted(partial["refused"]) == ["deploy-eu", "deploy-us"]
    assert "version: required" in partial["refused"]["deploy-eu"]
    none = requests.post(url, json={"pattern": "deploy-e*"}, headers=_auth())
    assert none.status_code == 422 and "version" in none.json()["error"]["fields"]["deploy-eu"]
    missing = requests.post(url, json={"pattern": "nothing-*"}, headers=_auth())
    assert missing.status_code == 404 and "matches no task" in missing.text
    bad = requests.post(url, json={"pattern": "^(x$"}, headers=_auth())
    assert bad.status_code == 422 and "not a regular expression" in bad.text
    assert requests.post(url, json={}, headers=_auth()).status_code == 400
    assert requests.post(url, json={"pattern": "deploy-*"}, headers=_auth("viewer")).status_code == 403


def test_strom_trigger_with_a_pattern_starts_a_batch_and_a_pattern_step_runs_children(live):
    service, server = live
    code, out = remote_cli(server, "trigger", "deploy-eu,deploy-us", "-i", "version=3", "-f")
    assert code == 0 and out.count("succeeded") == 2 and "deploy-eu" in out and "deploy-us" in out
    code, out = remote_cli(server, "trigger", "deploy-*", "-f")
    assert code == 1 and "deploy-eu: not started: version: required" in out
    run_id = requests.post(
        f"{server.url}/api/workspaces/local/tasks/deploy-all/execute", json={}, headers=_auth()
    ).json()["id"]
    state = finished(service, run_id)
    assert state.status is RunStatus.SUCCEEDED, state.error
    children = [service.runs.load(state.steps[f"all[{i}]"].child_job) for i in range(2)]
    assert [(c.task, c.inputs.get("version"), c.parent_job) for c in children] == [
        ("deploy-eu", "1.2", run_id),
        ("deploy-us", "1.2", run_id),
    ]
