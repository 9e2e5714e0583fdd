"""`/hooks/<name>`: Strøm-compatible webhooks that start a task, against a live server."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
import requests
from service_env import live_stack, make_config, serving, stack, wait_for

from runner.engine import RunStatus
from runner.store import RunFilter

HOOKS = {
    ".strom/hooks.yaml": """
    tasks:
      greet:
        input:
          who: { type: string }
        flow:
          hi:
            type: script
            script: |
              echo "hello {{ input.who }}"
              echo 'OUTPUT: {"greeting": "hello {{ input.who }}"}'
    triggers:
      open: { type: webhook, name: open-hook, task: greet, input: { who: "{{ body.name }} via {{ method }}" } }
      guarded:
        type: webhook
        name: guarded
        task: greet
        secret: "{{ secret.hook_token }}"
        input: { who: "{{ query.who | default(body.who) }}" }
      waiting:
        type: webhook
        name: sync-hook
        task: greet
        mode: sync
        timeout_secs: 30
        input: { who: "{{ headers['X-Who'] }}" }
    """
}
TOKEN = "hook-secret-value-42"


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(HOOKS), redis_url, STROM_SECRET_HOOK_TOKEN=TOKEN)
    with live_stack(config) as pair:
        yield pair


def finished(service, run_id):
    return wait_for(lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, what="the run")


def test_an_open_hook_stores_the_request_then_starts_the_task_with_its_body(live):
    service, server = live
    answer = requests.post(f"{server.url}/hooks/open-hook", json={"name": "ada"}, timeout=10)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["status"] == "done" and body["url"] == f"http://127.0.0.1:8080/runs/{body['run']}"
    state = finished(service, body["run"])
    assert state.status is RunStatus.SUCCEEDED and state.inputs == {"who": "ada via POST"}
    assert (state.source, state.trigger, state.event["kind"], state.event["body"]) == (
        "webhook",
        "open",
        "webhook",
        {"name": "ada"},
    )
    record = service.repo_events.load(body["id"])
    assert record["runs"] == [body["run"]] and record["extra"]["hook"] == "open-hook"


def test_a_form_encoded_body_arrives_as_its_fields(live):
    service, server = live
    answer = requests.post(f"{server.url}/hooks/open-hook", data={"name": "grace", "empty": ""}, timeout=10)
    assert answer.status_code == 202, answer.text
    state = finished(service, answer.json()["run"])
    assert state.event["body"] == {"name": "grace", "empty": ""} and state.inputs == {"who": "grace via POST"}
    many = "&".join(f"f{i}=1" for i in range(1001))
    refused = requests.post(
        f"{server.url}/hooks/open-hook",
        data=many,
        timeout=10,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert refused.status_code == 400 and refused.json()["error"]["message"] == "the form has more than 1000 fields"


def test_a_hook_that_does_not_exist_reads_a_body_like_one_that_does(live):
    _service, server = live
    huge = b"x" * (11 * 1024 * 1024)  # past limits.webhook_body_size
    for name in ("guarded", "no-such-hook"):
        answer = requests.post(
            f"{server.url}/hooks/{name}", data=huge, headers={"Authorization": "Bearer guess"}, timeout=10
        )
        assert answer.status_code == 413, (name, answer.text)
        small = requests.post(
            f"{server.url}/hooks/{name}", data=b"{}", headers={"Authorization": "Bearer guess"}, timeout=10
        )
        assert (small.status_code, small.json()["error"]["message"]) == (401, "the webhook secret does not match")


def test_a_guarded_hook_takes_its_secret_as_bearer_query_or_body_signature(live):
    service, server = live
    url = f"{server.url}/hooks/guarded"
    missing = requests.post(url, json={"who": "x"}, timeout=10)
    assert missing.status_code == 401 and "needs its secret" in missing.json()["error"]["message"]
    wrong = requests.post(url, json={"who": "x"}, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"]["message"] == "the webhook secret does not match"
    bearer = requests.post(url, json={"who": "bearer"}, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    query = requests.post(f"{url}?secret={TOKEN}&who=query", json={}, timeout=10)
    raw = json.dumps({"who": "signed"}).encode()
    signature = "sha256=" + hmac.new(TOKEN.encode(), raw, hashlib.sha256).hexdigest()
    signed = requests.post(
        url, data=raw, headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"}, timeout=10
    )
    forged = requests.post(
        url,
        data=raw.replace(b"signed", b"forged"),
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
        timeout=10,
    )
    assert forged.status_code == 401
    whos = [finished(service, a.json()["run"]).inputs["who"] for a in (bearer, query, signed)]
    assert whos == ["bearer", "query", "signed"]
    assert len(service.repo_events.list()) == 3, "refused requests are not stored"
    assert all(
        "authorization" not in {k.lower() for k in r["extra"]["headers"]}
        for r in (service.repo_events.load(e["id"]) for e in service.repo_events.list())
    )


def test_a_sync_hook_answers_with_the_runs_result_and_a_repeated_key_makes_one_run(live):
    service, server = live
    headers = {"X-Who": "grace", "Idempotency-Key": "order-17"}
    answer = requests.post(f"{server.url}/hooks/sync-hook", headers=headers, timeout=60)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["run_status"], body["output"]) == ("succeeded", {"greeting": "hello grace"})
    again = requests.post(f"{server.url}/hooks/sync-hook", headers=headers, timeout=60)
    assert again.json()["id"] == body["id"] and again.json()["duplicate"] is True
    assert again.json()["run"] == body["run"]
    assert len(service.repo_events.list()) == 1


def test_a_sync_hook_whose_run_is_deleted_while_it_waits_answers_410_not_500(service_workspace, redis_url):
    import threading

    config = make_config(service_workspace(HOOKS), redis_url)
    with stack(config, workers=0) as service, serving(config, service) as server:  # the run waits for a worker
        answers = []
        asking = threading.Thread(
            target=lambda: answers.append(
                requests.post(f"{server.url}/hooks/sync-hook", headers={"X-Who": "ada"}, timeout=60)
            )
        )
        asking.start()
        [waiting] = wait_for(lambda: service.runs.list(RunFilter()).runs, what="the hook's run")
        service.runs.delete([waiting])
        asking.join(30)
    [answer] = answers
    assert answer.status_code == 410, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["run"]) == ("gone", waiting.id)
    assert error["message"] == f"run {waiting.id} was deleted while this request waited for it"
    assert service.repo_events.load(error["event"])["runs"] == [waiting.id], "the delivery is kept"


def test_an_unknown_hook_is_answered_as_a_guarded_one_so_names_cannot_be_guessed(live):
    service, server = live
    for credentials in (
        {},
        {"headers": {"Authorization": "Bearer wrong-guess"}},
        {"headers": {"X-Hub-Signature-256": "sha256=" + "0" * 64}},
    ):
        unknown = requests.post(f"{server.url}/hooks/nope", json={}, timeout=10, **credentials)
        guarded = requests.post(f"{server.url}/hooks/guarded", json={}, timeout=10, **credentials)
        assert unknown.status_code == guarded.status_code == 401
        assert unknown.json() == guarded.json()
    assert service.repo_events.list() == []


def test_a_hook_secret_is_never_a_template_rendered_for_anonymous_callers(service_workspace):
    from runner.spec import load_workspace

    root = service_workspace(
        {
            ".strom/hooks.yaml": HOOKS[".strom/hooks.yaml"].replace(
                'secret: "{{ secret.hook_token }}"', "secret: \"{{ [cycler] | group_by(attribute='x') }}\""
            )
        }
    )
    problems = [p.format() for p in load_workspace(root).errors]
    assert any("a webhook's secret is a plain value or a reference to one secret" in p for p in problems), problems


def test_a_hook_name_two_workspaces_define_is_refused_rather_than_guessed(
    service_workspace, redis_url, tmp_path, caplog
):
    other = tmp_path / "other"
    (other / ".strom").mkdir(parents=True)
    (other / ".strom" / "hooks.yaml").write_text(
        "tasks:\n  t: { flow: { s: { type: script, script: 'true' } } }\n"
        "triggers:\n  mine: { type: webhook, name: open-hook, task: t }\n"
    )
    config = make_config(
        service_workspace(HOOKS),
        redis_url,
        STROM_SECRET_HOOK_TOKEN=TOKEN,
        STROM_WORKSPACES=json.dumps({"local": {"folder": "."}, "other": {"folder": str(other)}}),
    )
    with stack(config, workers=0, scheduler=False) as service:
        with serving(config, service) as server:
            answer = requests.post(f"{server.url}/hooks/open-hook", json={"name": "x"}, timeout=10)
    assert answer.status_code == 401, "answered as an unknown name: callers learn no workspace names"
    assert answer.json()["error"]["message"].startswith("this webhook needs its secret")
    assert (
        "webhook 'open-hook' is defined in workspaces local, other: every call is refused until one is renamed"
        in caplog.text
    ), "the operator is told"
    assert service.repo_events.list() == []


def test_the_query_secret_is_never_stored(live):
    service, server = live
    answer = requests.post(f"{server.url}/hooks/guarded?secret={TOKEN}&who=q", json={}, timeout=10)
    record = service.repo_events.load(answer.json()["id"])
    assert record["extra"]["query"] == {"who": "q"}
    assert TOKEN not in json.dumps(record) and TOKEN not in json.dumps(service.runs.load(answer.json()["run"]).event)
