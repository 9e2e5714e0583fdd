"""Alert triggers against a live stack: Alertmanager notifications as Alertmanager sends them (firing,
a repeat, resolved, firing again), label and status matching, the secret, and hostile bodies."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests
from conftest import load
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from service_env import make_config, serving, stack, wait_for

from runner.engine import RunStatus
from runner.store import RunFilter
from webhooks.app import create_app

FIXTURES = Path(__file__).parent / "fixtures" / "alertmanager"
FIRING = json.loads((FIXTURES / "firing.json").read_text())
RESOLVED = json.loads((FIXTURES / "resolved.json").read_text())
TOKEN = "am-t0ken-value-1234"
HEADERS = {"User-Agent": "Alertmanager/0.27.0", "Authorization": f"Bearer {TOKEN}"}

WORKSPACE = {
    ".strom/alerts.yaml": """
    tasks:
      free-disk:
        input:
          instance: { type: string, required: true }
          state: { type: string, required: true }
        flow:
          clean:
            type: script
            script: |
              echo "{{ input.state }} on {{ input.instance }}: {{ event.annotations.summary }}"
              echo "from {{ event.generator_url[:24] }} via {{ event.receiver }}"
    triggers:
      disk-full:
        type: alert
        task: free-disk
        secret: "{{ secret.am_token }}"
        labels: { alertname: "Disk*", severity: "^(critical|page)$" }
        status: [firing, resolved]
        input: { instance: "{{ event.labels.instance }}", state: "{{ event.status }}" }
    """
}


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_SECRET_AM_TOKEN=TOKEN)
    with stack(config) as service, serving(config, service) as server:
        yield service, server


def post(server, body, headers=HEADERS, name="disk-full"):
    return requests.post(f"{server.url}/hooks/alertmanager/{name}", json=body, headers=headers, timeout=10)


def runs(service):
    return service.runs.list(RunFilter(task="free-disk"), limit=50).runs


def lines(service, run_id):
    return [line.text for line in service.logs.read(run_id) if line.stream == "stdout"]


def test_firing_then_a_repeat_then_resolved_then_firing_again(live):
    service, server = live
    answer = post(server, FIRING)
    assert answer.status_code == 202, answer.text
    critical, warning = answer.json()["alerts"]
    assert (critical["fingerprint"], critical["outcome"], len(critical["runs"])) == ("d57ff78af6ac95e8", "done", 1)
    assert warning["outcome"] == "ignored" and warning["runs"] == []
    assert "label severity='warning' does not match '^(critical|page)$'" in warning["reason"]
    first = wait_for(lambda: (s := service.runs.load(critical["runs"][0])).status.terminal and s, what="the run")
    assert first.status is RunStatus.SUCCEEDED, first.steps["clean"].error
    assert first.inputs == {"instance": "db-1:9100", "state": "firing"}
    assert lines(service, first.id) == [
        "firing on db-1:9100: Disk /var/lib/postgresql on db-1 is 97% full",
        "from http://prometheus:9090/g via strom",
    ]
    assert first.event["labels"]["mountpoint"] == "/var/lib/postgresql" and first.trigger == "disk-full"

    repeat = post(server, FIRING).json()["alerts"][0]  # repeat_interval, or the group changing: the same alert
    assert repeat["duplicate"] is True and repeat["runs"] == [first.id]
    assert len(runs(service)) == 1, "a repeated firing alert starts nothing new"

    resolved = post(server, RESOLVED).json()["alerts"][0]
    assert resolved["status"] == "resolved" and len(resolved["runs"]) == 1 and resolved["runs"] != [first.id]
    end = wait_for(lambda: (s := service.runs.load(resolved["runs"][0])).status.terminal and s, what="the run")
    assert end.inputs["state"] == "resolved"
    assert post(server, RESOLVED).json()["alerts"][0]["duplicate"] is True

    again = copy.deepcopy(FIRING)
    again["alerts"][0]["startsAt"] = "2026-12-02T21:30:00Z"  # it fired anew after it was resolved
    refired = post(server, again).json()["alerts"][0]
    assert len(refired["runs"]) == 1 and refired["runs"][0] not in (first.id, end.id)
    assert len(runs(service)) == 3
    events = service.repo_events.list(workspace="local", limit=20)
    assert {e["event"]["source"] for e in events} == {"alertmanager"} and len(events) == 4, "one per alert and state"


def test_only_the_secret_opens_the_hook(live):
    service, server = live
    assert post(server, FIRING, headers={}).status_code == 401
    assert post(server, FIRING, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert post(server, FIRING, name="no-such-trigger").status_code == 401, "unknown names look like a bad secret"
    raw = json.dumps(FIRING).encode()
    signature = "sha256=" + hmac.new(TOKEN.encode(), raw, hashlib.sha256).hexdigest()
    signed = requests.post(
        f"{server.url}/hooks/alertmanager/disk-full",
        data=raw,
        headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        timeout=10,
    )
    assert signed.status_code == 202 and len(signed.json()["alerts"][0]["runs"]) == 1
    assert len(runs(service)) == 1


def test_a_paused_trigger_records_the_alert_and_starts_nothing(live):
    service, server = live
    service.pauses.pause("local", "trigger", "disk-full", "alice", "maintenance")
    answer = post(server, FIRING).json()["alerts"][0]
    assert answer["runs"] == [] and "paused" in answer["reason"]
    assert runs(service) == []


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda b: b.pop("alerts"), "alerts is missing"),
        (lambda b: b.update(alerts={"a": 1}), "alerts is missing or not a list"),
        (lambda b: b["alerts"][0].update(status="burning"), "alerts[0].status is 'burning'"),
        (lambda b: b["alerts"][0].update(labels=["x"]), "alerts[0].labels is a list"),
        (lambda b: b["alerts"][1]["annotations"].update(summary=7), "alerts[1].annotations.summary is a int"),
        (lambda b: b.update(alerts=[b["alerts"][0]] * 1001), "more than 1000"),
        (lambda b: b["alerts"][0]["labels"].update({f"l{i}": "v" for i in range(101)}), "more than 100"),
        (lambda b: b["alerts"][0].update(generatorURL="h" * 5000), "longer than 4096"),
    ],
)
def test_a_malformed_notification_is_a_400_with_the_reason(live, mutate, words):
    service, server = live
    body = copy.deepcopy(FIRING)
    mutate(body)
    answer = post(server, body)
    assert answer.status_code == 400 and words in answer.json()["error"]["message"], answer.text
    assert runs(service) == []


@pytest.fixture
def client(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_SECRET_AM_TOKEN=TOKEN)
    with stack(config, workers=0) as service:
        yield create_app(config, service).test_client()


_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_mutated_retyped_and_oversized_notifications_never_5xx(client, data):
    body = copy.deepcopy(FIRING)
    alert = body["alerts"][data.draw(st.integers(0, 1))]
    where = data.draw(st.sampled_from([body, alert, alert["labels"], alert["annotations"]]))
    key = data.draw(st.sampled_from(sorted(where) + ["extra"]))
    where[key] = data.draw(_VALUES)
    answer = client.post("/hooks/alertmanager/disk-full", json=body, headers=HEADERS)
    assert answer.status_code in (202, 400), answer.get_data(as_text=True)
    if answer.status_code == 400:
        assert answer.get_json()["error"]["code"] == "bad_payload"


@pytest.mark.parametrize(
    "trigger, code, words",
    [
        ("{ type: alert, task: t }", "missing-field", "'secret'"),
        ('{ type: alert, task: t, secret: "{{ secret.x }}", status: burning }', "bad-value", "unknown alert status"),
        ('{ type: alert, task: t, secret: "{{ secret.x }}", labels: { a: "^(x$" } }', "bad-value", "label 'a'"),
        ('{ type: alert, task: t, secret: "{{ secret.x }}", branches: [main] }', "invalid-field", "type 'alert'"),
    ],
)
def test_alert_trigger_mistakes_are_validation_errors(trigger, code, words):
    result = load(f"tasks:\n  t:\n    flow: {{ a: {{ type: script, script: x }} }}\ntriggers:\n  am: {trigger}\n")
    found = [p for p in result.errors if p.code == code]
    assert found and words in found[0].message, [p.format() for p in result.problems]
