"""The HTTP API through Flask's test client and a live server: auth, runs, logs over SSE, approvals."""

from __future__ import annotations

import json
import re
import time

import jsonschema
import pytest
import requests
from service_env import TOKENS, LiveServer, make_config, stack, wait_for

from webhooks.app import create_app
from webhooks.openapi import document

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      hello:
        description: Say hello
        input:
          name: { type: string, required: true }
          count: { type: integer, default: 2 }
          password: { type: string, secret: true, default: "hunter2hunter2" }
        flow:
          greet:
            type: script
            script: 'for i in $(seq {{ input.count }}); do echo "hello {{ input.name }} $i"; done; echo "pw=$PW"'
            env: { PW: "{{ input.password }}" }
      gate:
        flow:
          ask: { type: approval, message: "ship {{ job.id }}?" }
          ship: { type: script, script: "echo shipped", depends_on: [ask] }
      slow:
        flow:
          tick: { type: script, script: "for i in 1 2 3 4 5 6 7 8 9 10; do echo tick $i; sleep 0.3; done" }
    triggers:
      nightly: { type: scheduler, cron: "0 2 * * *", task: hello, input: { name: night } }
      hook: { type: webhook, name: hello-hook, task: hello }
    """
}


def auth(role="admin"):
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def config(service_workspace, redis_url):
    return make_config(service_workspace(WORKSPACE), redis_url)


@pytest.fixture
def client(config):
    return create_app(config).test_client()


SCHEMAS = document()["components"]["schemas"]


def assert_schema(data, name):
    schema = {"$ref": f"#/components/schemas/{name}", "components": {"schemas": SCHEMAS}}
    jsonschema.Draft202012Validator(schema).validate(data)


def test_health_and_readiness_need_no_token(client):
    assert client.get("/api/health").json["status"] == "ok"
    ready = client.get("/api/ready")
    assert ready.status_code == 200 and ready.json["status"] == "ready"


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/workspaces"),
        ("get", "/api/runs"),
        ("get", "/metrics"),
        ("post", "/api/workspaces/local/tasks/hello/execute"),
        ("get", "/api/runs/x/logs"),
    ],
)
def test_everything_else_needs_a_valid_token(client, method, path):
    response = getattr(client, method)(path)
    assert response.status_code == 401
    assert response.json["error"] == {
        "code": "unauthorized",
        "message": "missing API token; send `Authorization: Bearer <token>`",
    }
    wrong = getattr(client, method)(path, headers={"Authorization": "Bearer not-a-real-token-at-all"})
    assert wrong.status_code == 401 and wrong.json["error"]["message"].startswith("unknown API token")


@pytest.mark.parametrize(
    "role, execute, approve, read",
    [
        ("viewer", 403, 403, 200),
        ("operator", 201, 403, 200),
        ("approver", 403, 409, 200),
        ("admin", 201, 409, 200),
    ],
)
def test_roles_decide_what_a_token_may_do(client, role, execute, approve, read):
    run = client.post("/api/workspaces/local/tasks/gate/execute", json={}, headers=auth("admin")).json
    assert (
        client.post(
            "/api/workspaces/local/tasks/hello/execute", json={"input": {"name": "x"}}, headers=auth(role)
        ).status_code
        == execute
    )
    approved = client.post(f"/api/runs/{run['id']}/steps/ship/approve", json={}, headers=auth(role))
    assert approved.status_code == approve
    if approve == 403:
        assert approved.json["error"]["message"] == f"token {role!r} (role {role}) may not approve"
    assert client.get(f"/api/runs/{run['id']}", headers=auth(role)).status_code == read


def test_tokens_never_reach_the_logs(config, caplog):
    client = create_app(config).test_client()
    with caplog.at_level("DEBUG"):
        client.get("/api/runs", headers=auth("viewer"))
        client.get("/api/runs", headers={"Authorization": "Bearer leaked-token-value-xyz-123"})
    assert TOKENS["viewer"] not in caplog.text and "leaked-token-value" not in caplog.text


def test_workspaces_tasks_and_triggers_with_next_cron_fire(client):
    spaces = client.get("/api/workspaces", headers=auth()).json["workspaces"]
    assert [(w["name"], w["valid"], w["tasks"], w["triggers"]) for w in spaces] == [("local", True, 3, 2)]
    tasks = client.get("/api/workspaces/local/tasks", headers=auth()).json["tasks"]
    hello = next(t for t in tasks if t["name"] == "hello")
    for task in tasks:
        assert_schema(task, "Task")
    assert hello["input"]["name"] == {
        "type": "string",
        "required": True,
        "multiple": False,
        "allow_custom": False,
        "secret": False,
    }
    assert "default" not in hello["input"]["password"], "secret defaults are not shown"
    nightly = next(t for t in hello["triggers"] if t["name"] == "nightly")
    assert nightly["cron"] == "0 2 * * *" and time.time() < nightly["next_fire"] <= time.time() + 86400
    assert nightly["next_fire"] % 86400 == 7200
    triggers = client.get("/api/workspaces/local/triggers", headers=auth()).json["triggers"]
    assert {t["name"] for t in triggers} == {"nightly", "hook"}
    assert client.get("/api/workspaces/nope/tasks", headers=auth()).status_code == 404
    missing = client.get("/api/workspaces/local/tasks/helo", headers=auth())
    assert missing.status_code == 404 and "no task 'helo'" in missing.json["error"]["message"]


def test_execute_checks_inputs_with_one_message_per_field(client):
    response = client.post(
        "/api/workspaces/local/tasks/hello/execute", json={"input": {"count": "lots", "colour": "red"}}, headers=auth()
    )
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {
        "name": "required; pass it as name=<string>",
        "count": "expected a whole number, got 'lots'",
        "colour": "unknown input (takes: name, count, password)",
    }
    bad = client.post(
        "/api/workspaces/local/tasks/hello/execute", data="not json", headers=auth(), content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json["error"]["message"] == "the body is not JSON; send a JSON object"
    assert client.post("/api/workspaces/local/tasks/nope/execute", json={}, headers=auth()).status_code == 404


def test_a_run_through_the_api_with_logs_cancel_and_rerun(config):
    with stack(config) as service:
        client = create_app(config, service).test_client()
        created = client.post(
            "/api/workspaces/local/tasks/hello/execute", json={"input": {"name": "api"}}, headers=auth("operator")
        )
        assert created.status_code == 201 and created.headers["Location"] == f"/api/runs/{created.json['id']}"
        assert_schema(created.json, "Run")
        run_id = created.json["id"]
        run = wait_for(
            lambda: (r := client.get(f"/api/runs/{run_id}", headers=auth()).json)["status"] == "succeeded" and r,
            what="the run to succeed",
        )
        assert_schema(run, "Run")
        assert run["inputs"] == {"name": "api", "count": 2, "password": "***"}
        assert run["steps"][0]["worker"] == "test-worker-0"
        logs = client.get(f"/api/runs/{run_id}/steps/greet/logs", headers=auth()).json
        assert [line["text"] for line in logs["lines"]] == ["hello api 1", "hello api 2", "pw=***"]
        text = client.get(f"/api/runs/{run_id}/logs?format=text", headers=auth()).data.decode()
        assert text == "[greet] hello api 1\n[greet] hello api 2\n[greet] pw=***\n"
        again = client.post(f"/api/runs/{run_id}/rerun", headers=auth("operator")).json
        assert again["inputs"] == run["inputs"] and again["id"] != run_id and again["commit"] == run["commit"]
        listed = client.get("/api/runs?task=hello&workspace=local", headers=auth()).json
        assert [r["id"] for r in listed["runs"]] == [again["id"], run_id]
        for summary in listed["runs"]:
            assert_schema(summary, "RunSummary")
        slow = client.post("/api/workspaces/local/tasks/slow/execute", json={}, headers=auth()).json
        wait_for(lambda: client.get(f"/api/runs/{slow['id']}/logs", headers=auth()).json["lines"], what="a first line")
        cancelled = client.post(f"/api/runs/{slow['id']}/cancel", json={"reason": "stop"}, headers=auth("operator"))
        assert cancelled.status_code == 202 and cancelled.json["cancel_requested"] is True
        final = wait_for(
            lambda: (r := client.get(f"/api/runs/{slow['id']}", headers=auth()).json)["status"] == "cancelled" and r,
            what="the cancel",
        )
        assert final["error"] == "stop by operator"
        again_cancel = client.post(f"/api/runs/{slow['id']}/cancel", json={}, headers=auth("operator"))
        assert again_cancel.status_code == 409 and "already finished" in again_cancel.json["error"]["message"]


def test_approve_and_reject_through_the_api(config):
    with stack(config) as service:
        client = create_app(config, service).test_client()
        run = client.post("/api/workspaces/local/tasks/gate/execute", json={}, headers=auth()).json
        assert run["status"] == "waiting"
        assert run["steps"][0]["approval"]["message"] == f"ship {run['id']}?"
        approved = client.post(f"/api/runs/{run['id']}/steps/ask/approve", json={}, headers=auth("approver"))
        assert approved.status_code == 200
        assert approved.json["steps"][0]["output"]["approved_by"] == "approver"
        final = wait_for(
            lambda: (r := client.get(f"/api/runs/{run['id']}", headers=auth()).json)["status"] == "succeeded" and r,
            what="the approved run",
        )
        assert final["steps"][1]["status"] == "succeeded"
        second = client.post("/api/workspaces/local/tasks/gate/execute", json={}, headers=auth()).json
        rejected = client.post(
            f"/api/runs/{second['id']}/steps/ask/reject", json={"reason": "no"}, headers=auth("approver")
        ).json
        assert rejected["status"] == "failed" and rejected["steps"][0]["error"] == "rejected by approver: no"
        legacy = client.post("/api/workspaces/local/tasks/gate/execute", json={}, headers=auth()).json
        shape = client.post(
            f"/api/runs/{legacy['id']}/steps/ask/approve",
            json={"approved": False, "rejection_reason": "Version mismatch"},
            headers=auth(),
        ).json
        assert shape["steps"][0]["error"] == "rejected by admin: Version mismatch"
        assert client.post(f"/api/runs/{legacy['id']}/steps/nope/approve", json={}, headers=auth()).status_code == 404


def _sse(url, headers, stop_after=None):
    events, current = [], {}
    with requests.get(url, headers=headers, stream=True, timeout=(5, 30)) as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        for raw in response.iter_lines(decode_unicode=True):
            if raw == "":
                if current:
                    events.append(current)
                    if current.get("event") == "end" or (stop_after and len(events) >= stop_after):
                        return events
                current = {}
            elif raw.startswith(":"):
                events.append({"comment": raw[1:].strip()})
            else:
                field, _, value = raw.partition(":")
                current[field] = value.strip()
    return events


def test_logs_follow_live_over_sse_and_resume_after_the_last_event_id(config):
    with stack(config) as service:
        server = LiveServer(config, service)
        try:
            run = requests.post(f"{server.url}/api/workspaces/local/tasks/slow/execute", json={}, headers=auth()).json()
            url = f"{server.url}/api/runs/{run['id']}/steps/tick/logs?follow=1&heartbeat_ms=200"
            first = [e for e in _sse(url, auth(), stop_after=4) if e.get("event") == "line"]
            texts = [json.loads(e["data"])["text"] for e in first]
            assert texts == [f"tick {i}" for i in range(1, len(texts) + 1)] and texts
            resumed = _sse(url, {**auth(), "Last-Event-ID": first[-1]["id"]})
            lines = [json.loads(e["data"])["text"] for e in resumed if e.get("event") == "line"]
            assert lines == [f"tick {i}" for i in range(len(texts) + 1, 11)]
            assert resumed[-1]["event"] == "end" and json.loads(resumed[-1]["data"]) == {"status": "succeeded"}
            assert any("heartbeat" in e.get("comment", "") for e in resumed), "heartbeats keep the stream alive"
        finally:
            server.stop()


def test_metrics_report_runs_steps_queues_and_workers(config):
    with stack(config) as service:
        client = create_app(config, service).test_client()
        run = client.post(
            "/api/workspaces/local/tasks/hello/execute", json={"input": {"name": "m"}}, headers=auth()
        ).json
        wait_for(
            lambda: client.get(f"/api/runs/{run['id']}", headers=auth()).json["status"] == "succeeded", what="the run"
        )
        text = client.get("/metrics", headers=auth("viewer")).data.decode()
        assert 'strom_runs{status="succeeded"} 1.0' in text
        assert 'strom_runs_finished_total{status="succeeded"} 1.0' in text
        assert "strom_step_duration_seconds_count 1.0" in text
        assert 'strom_queue_depth{queue="strom-script"} 0.0' in text
        assert 'strom_workers{ability="script"} 1.0' in text and "strom_workers_live 2.0" in text
        assert "strom_repo_events_queued 0.0" in text and "strom_reports_failed_total 0.0" in text


def test_the_openapi_description_matches_the_routes(client):
    assert client.get("/api/openapi.json").status_code == 401
    doc = client.get("/api/openapi.json", headers=auth("viewer")).json
    documented = {
        (path, method.upper())
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch")
    }
    app = client.application
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("ui."):
            continue  # the web UI's pages are for people, not part of the API
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{" + m.group(1).replace("_id", "") + "}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            served.add((path, method))
    assert documented == served
    secured = {(p, m) for p, m in documented if doc["paths"][p][m.lower()].get("security") != []}
    for path, method in secured:
        view = app.view_functions[app.url_map.bind("").match(path.replace("{", "x").replace("}", ""), method=method)[0]]
        assert getattr(view, "strom_permission", None), f"{method} {path} is documented as needing a token"


def test_errors_are_json_with_a_message(client):
    response = client.get("/api/runs/nope", headers=auth())
    assert response.status_code == 404 and response.json == {"error": {"code": "not_found", "message": "no run nope"}}
    assert client.get("/api/nothing-here", headers=auth()).json["error"]["code"] == "not_found"
    bad = client.get("/api/runs?since=yesterday", headers=auth())
    assert bad.status_code == 400 and "since must be a Unix timestamp" in bad.json["error"]["message"]
