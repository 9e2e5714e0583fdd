"""Ad-hoc runs (`strom exec`, the API, the UI form) against a live stack: the command runs literally in the
sandbox, the run is in history as `exec: NAME` with logs, cancel and re-run, requests are checked field by
field, the operator role is needed, and `--ref` picks the commit of a git workspace."""

from __future__ import annotations

import json

import pytest
import requests
from git_env import commit, git
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_env import TOKENS, csrf, make_config, remote_cli, serving, signed_in, stack, wait_for

from runner.engine import RunStatus
from runner.errors import InputError
from runner.spec.adhoc import exec_inputs, exec_task
from runner.store import RunFilter

WORKSPACE = {
    "VERSION": "1.2\n",
    ".strom/t.yaml": """
    tasks:
      hello:
        flow:
          s: { type: script, script: "echo hi" }
    """,
}


def _auth(role="operator"):
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_SECRET_API_KEY="k3y-s3cr3t-value")
    with stack(config) as service, serving(config, service) as server:
        yield service, server


def finished(service, run_id):
    return wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=30, what="the run")


def log_of(service, run_id):
    return [line.text for line in service.logs.read(run_id) if line.stream in ("stdout", "stderr")]


def test_a_command_runs_literally_with_templated_env_and_shows_in_history(live):
    service, server = live
    request = {
        "name": "inspect",
        "command": ["sh", "-c", 'echo "v$(cat VERSION) key=$KEY"; echo "$1"', "--", "{{ secret.api_key }} $(id -u)"],
        "env": {"KEY": "{{ secret.api_key }}"},
    }
    answer = requests.post(f"{server.url}/api/workspaces/local/exec", json=request, headers=_auth(), timeout=10)
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["task"] == "exec: inspect" and answer.headers["Location"] == f"/api/runs/{body['id']}"
    state = finished(service, body["id"])
    assert state.status is RunStatus.SUCCEEDED, state.steps["exec"].error
    assert log_of(service, state.id) == ["v1.2 key=***", "{{ secret.api_key }} $(id -u)"], (
        "the command is neither a template nor shell text: its words arrive as written"
    )
    assert (state.source, state.event["actor"], state.inputs["timeout"]) == ("exec", "operator", 300)
    listed = requests.get(f"{server.url}/api/runs", params={"task": "exec: inspect"}, headers=_auth(), timeout=10)
    assert [r["id"] for r in listed.json()["runs"]] == [state.id]
    again = requests.post(f"{server.url}/api/runs/{state.id}/rerun", headers=_auth(), timeout=10)
    assert again.status_code == 201 and again.json()["task"] == "exec: inspect"
    second = finished(service, again.json()["id"])
    assert second.status is RunStatus.SUCCEEDED and log_of(service, second.id) == log_of(service, state.id)


def test_a_timeout_ends_the_command_and_cancel_stops_it(live):
    service, server = live
    url = f"{server.url}/api/workspaces/local/exec"
    slow = requests.post(url, json={"script": "echo start; sleep 30", "timeout": 1}, headers=_auth(), timeout=10)
    state = finished(service, slow.json()["id"])
    assert state.status is RunStatus.TIMED_OUT and state.error == "run timed out after 1s"
    long = requests.post(url, json={"script": "echo start; sleep 30"}, headers=_auth(), timeout=10).json()
    wait_for(lambda: "start" in log_of(service, long["id"]), what="the command's first line")
    requests.post(f"{server.url}/api/runs/{long['id']}/cancel", headers=_auth(), timeout=10)
    assert finished(service, long["id"]).status is RunStatus.CANCELLED


@pytest.mark.parametrize(
    "request_body, field, words",
    [
        ({}, "command", "either `command`"),
        ({"command": "make clean"}, "command", "list of words"),
        ({"command": ["x"], "script": "x"}, "command", "either"),
        ({"script": "  "}, "script", "shell text"),
        ({"script": "x", "timeout": 0}, "timeout", "1 to 3600"),
        ({"script": "x", "timeout": 3601}, "timeout", "1 to 3600"),
        ({"script": "x", "timeout": "60"}, "timeout", "whole seconds"),
        ({"script": "x", "name": "has space"}, "name", "letters, digits"),
        ({"script": "x", "env": {"A": "{{ broken"}}, "env", "invalid template"),
        ({"script": "x", "env": {"1A": "x"}}, "env", "NAME: value"),
        ({"script": "x", "ability": "gpu"}, "ability", "script, docker, kubernetes"),
        ({"script": "x", "image": "busybox"}, "image", "docker or kubernetes"),
        ({"script": "x", "tags": ["a/b"]}, "tags", "worker tags"),
        ({"script": "x", "colour": "red"}, "colour", "unknown field"),
        ({"script": "x\0y"}, "script", "NUL"),
    ],
)
def test_a_bad_request_names_each_field_and_the_fix(live, request_body, field, words):
    service, server = live
    answer = requests.post(f"{server.url}/api/workspaces/local/exec", json=request_body, headers=_auth(), timeout=10)
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert words in error["fields"][field], error
    assert service.runs.list(RunFilter(), limit=5).runs == [], "nothing started"


def test_only_operators_may_exec_and_a_folder_has_no_ref(live):
    _service, server = live
    url = f"{server.url}/api/workspaces/local/exec"
    for role in ("viewer", "approver"):
        assert requests.post(url, json={"script": "id"}, headers=_auth(role), timeout=10).status_code == 403
    assert requests.post(url, json={"script": "id"}, timeout=10).status_code == 401
    folder = requests.post(url, json={"script": "id", "ref": "main"}, headers=_auth(), timeout=10)
    assert folder.status_code == 422 and "is a folder" in folder.text
    missing = requests.post(f"{server.url}/api/workspaces/nope/exec", json={"script": "id"}, headers=_auth())
    assert missing.status_code == 404 and "no workspace 'nope'" in missing.text


def test_strom_exec_follows_the_command_and_exits_with_its_status(live, tmp_path):
    service, server = live
    code, out = remote_cli(server, "exec", "--name", "check", "--", "sh", "-c", "echo out-$((6*7)); exit 0")
    assert code == 0 and "out-42" in out and "exec: check" in out
    script = tmp_path / "fix.sh"
    script.write_text("echo fixing\nexit 3\n")
    code, out = remote_cli(server, "exec", "--script", str(script), "-e", "A=1")
    assert code == 1 and "fixing" in out and "exit code 3" in out
    code, out = remote_cli(server, "exec", "-d", "--", "true")
    run_id = out.split()[0]
    assert code == 0 and finished(service, run_id).task == "exec: adhoc"
    code, out = remote_cli(server, "exec", "--timeout", "0", "--", "true")
    assert code == 2 and "1<=x<=3600" in out
    code, out = remote_cli(server, "exec")
    assert code == 2 and "give a COMMAND" in out
    code, out = remote_cli(server, "exec", "--", "true", token="viewer")
    assert code == 1 and "may not run (HTTP 403)" in out


def test_the_ui_form_starts_a_command_and_keeps_what_was_typed_on_an_error(live):
    service, server = live
    browser = signed_in(server, "operator")
    page = browser.get(f"{server.url}/tasks", timeout=10).text
    assert 'id="adhoc"' in page
    token = csrf(page)
    bad = browser.post(
        f"{server.url}/tasks/local/exec",
        data={"csrf_token": token, "script": "echo typed", "timeout": "9999", "env": "NOEQUALS", "name": "ui"},
        timeout=10,
    )
    assert bad.status_code == 422 and "echo typed</textarea>" in bad.text and "is not KEY=VALUE" in bad.text, bad.text[
        bad.text.find("adhoc") :
    ][:3000]
    bad = browser.post(
        f"{server.url}/tasks/local/exec", data={"csrf_token": token, "script": "echo typed", "timeout": "9999"}
    )
    assert bad.status_code == 422 and "1 to 3600" in bad.text
    started = browser.post(
        f"{server.url}/tasks/local/exec",
        data={"csrf_token": token, "script": "echo from-the-form $A", "env": "A={{ secret.api_key }}", "name": "ui"},
        timeout=10,
    )
    run_id = started.url.rsplit("/", 1)[1]
    assert started.status_code == 200 and "exec: ui" in started.text
    assert log_of(service, finished(service, run_id).id) == ["from-the-form ***"]
    viewer = signed_in(server, "viewer")
    assert 'id="adhoc"' not in viewer.get(f"{server.url}/tasks", timeout=10).text


def test_ref_runs_the_command_on_that_branch_or_commit(tmp_path, redis_url, upstream):
    work, bare = upstream
    first = commit(work, {".strom/t.yaml": WORKSPACE[".strom/t.yaml"], "VERSION": "1\n"})
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "feature")
    commit(work, {"VERSION": "2-feature\n"})
    git(work, "push", "-q", "origin", "feature")
    folder = tmp_path / "empty"
    folder.mkdir()
    config = make_config(
        folder,
        redis_url,
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_WORKSPACES=json.dumps({"app": {"git": str(bare)}}),
    )
    with stack(config) as service, serving(config, service) as server:
        url = f"{server.url}/api/workspaces/app/exec"
        seen = {}
        for ref in (None, "feature", first):
            body = {"command": ["cat", "VERSION"], **({"ref": ref} if ref else {})}
            answer = requests.post(url, json=body, headers=_auth(), timeout=30)
            assert answer.status_code == 201, answer.text
            seen[ref] = log_of(service, finished(service, answer.json()["id"]).id)
        assert seen == {None: ["1"], "feature": ["2-feature"], first: ["1"]}
        unknown = requests.post(url, json={"script": "true", "ref": "nope"}, headers=_auth(), timeout=30)
        assert unknown.status_code in (404, 422) and "nope" in unknown.text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.dictionaries(
        st.sampled_from(["name", "command", "script", "timeout", "env", "ability", "tags", "image", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=30),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
            max_leaves=12,
        ),
    )
)
def test_any_request_makes_a_task_or_an_input_error(request_body):
    try:
        inputs = exec_inputs(request_body)
    except InputError as exc:
        assert exc.errors and all(isinstance(v, str) and v for v in exc.errors.values())
        return
    task = exec_task(json.loads(json.dumps(inputs)))  # as stored with the run, and made again for a re-run
    assert task.name == f"exec: {inputs['name']}" and list(task.flow) == ["exec"]
