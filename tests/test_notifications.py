"""Notifications end to end: runs on a live stack tell the channels their `notify:` rules name —
mail through a real SMTP server, Slack and Discord through the HTTP requests Apprise makes
(captured, nothing leaves the machine), and a channel nobody listens on — and nothing else."""

from __future__ import annotations

import json

import pytest
import requests
import responses
from click.testing import CliRunner
from service_env import TOKENS, free_port, make_config, serving, stack, wait_for
from smtp_env import SmtpServer

from runner.cli import main
from runner.engine import RunStatus

SLACK_URL = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
SLACK_HOOK = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
DISCORD_URL = "discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"
DISCORD_HOOK = "https://discord.com/api/webhooks/4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js"
PUBLIC = "https://strom.example.com"
WORKSPACE = {
    ".strom/ci.yaml": """
    tasks:
      build:
        input:
          fail: { type: boolean, default: false }
        notify:
          - { channels: [mail], events: [failed, recovered] }
          - channels: [chat]
            events: [failed]
            title: "{{ hook.task_name }} broke"
            body: "{{ hook.failed_steps[0].step_name }} said: {{ hook.failed_steps[0].error_message }}"
        flow:
          compile:
            type: script
            script: |
              {% if input.fail %}echo "key {{ secret.api_key }} rejected" >&2; exit 3{% endif %}
              echo compiled
      deploy:
        input:
          version: { type: string, default: "1.4" }
        notify: [{ channels: [chat], events: [waiting] }]
        flow:
          gate: { type: approval, message: "ship {{ input.version }}?", approvers: [alice, "@octo/release"] }
          ship: { type: script, script: "echo shipped", depends_on: [gate] }
      announce:
        input:
          version: { type: string, default: "2.0" }
        notify: []
        flow:
          tell:
            type: notify
            channels: [chat, down]
            title: "Release {{ input.version }}"
            message: "**{{ input.version }}** is out (key {{ secret.api_key }})"
      quiet:
        flow:
          ok: { type: script, script: "echo fine" }
    notify:
      - { channels: [down], events: [succeeded] }
    """
}


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def captured():
    """The HTTP requests Apprise sends to Slack and Discord (local traffic passes through)."""
    with responses.RequestsMock(assert_all_requests_are_fired=False, passthru_prefixes=("http://127.0.0.1",)) as mock:
        mock.add(responses.POST, SLACK_HOOK, body="ok")
        mock.add(responses.POST, DISCORD_HOOK, status=204)
        yield mock


def channels(smtp) -> dict:
    return {"mail": [smtp.url()], "chat": [SLACK_URL, DISCORD_URL], "down": [f"json://127.0.0.1:{free_port()}/hook"]}


@pytest.fixture
def live(service_workspace, redis_url, smtp, captured):
    folder = service_workspace(WORKSPACE)
    config = make_config(
        folder,
        redis_url,
        STROM_PUBLIC_URL=PUBLIC,
        STROM_SECRET_API_KEY="k3y-s3cr3t-value",
        STROM_NOTIFICATIONS=json.dumps({"channels": channels(smtp), "timeout": "2s", "attempts": 2}),
    )
    with stack(config) as service, serving(config, service) as server:
        yield service, server


def start(server, task: str, **inputs) -> str:
    answer = requests.post(
        f"{server.url}/api/workspaces/local/tasks/{task}/execute",
        json={"input": inputs},
        headers={"Authorization": f"Bearer {TOKENS['admin']}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def finished(service, run_id):
    return wait_for(lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, what=f"run {run_id}")


def sent_to(captured, url: str) -> list[dict]:
    return [json.loads(call.request.body) for call in captured.calls if call.request.url.startswith(url)]


def notify_lines(service, run_id) -> list[str]:
    return [line.text for line in service.logs.read(run_id) if line.step == "(notify)"]


def test_failures_recoveries_and_waiting_gates_reach_their_channels_and_no_others(live, smtp, captured):
    service, server = live
    failed = finished(service, start(server, "build", fail=True))
    assert failed.status is RunStatus.FAILED
    [mail] = smtp.wait_for_mails(1)
    assert (mail.sender, mail.recipients, mail.subject) == (
        "strom@example.com",
        ["ops@example.com"],
        "❌ build failed · local",
    )
    assert mail.content_type == "text/plain"
    body = mail.body.replace("\r\n", "\n")
    assert "failed in " in body and "· started from the API by admin" in body
    assert "failed steps:\n- compile: " in body and "exit code 3" in body
    assert f"Run: {PUBLIC}/runs/{failed.id}" in body and "k3y-s3cr3t-value" not in body
    wait_for(lambda: len(sent_to(captured, DISCORD_HOOK)) == 1, what="the discord message")
    [slack] = sent_to(captured, SLACK_HOOK)
    assert slack["attachments"][0]["title"] == "build broke"
    assert slack["attachments"][0]["text"].startswith("compile said: ")
    [discord] = sent_to(captured, DISCORD_HOOK)
    assert discord["content"].startswith("build broke") and "compile said:" in discord["content"]
    assert all("k3y-s3cr3t-value" not in json.dumps(m) for m in sent_to(captured, "https://")), "secrets are masked"
    wait_for(lambda: len(notify_lines(service, failed.id)) == 3, what="the deliveries on the run's log")
    assert all(" sent to " in line for line in notify_lines(service, failed.id))

    recovered = finished(service, start(server, "build"))
    assert recovered.status is RunStatus.SUCCEEDED
    mails = smtp.wait_for_mails(2)
    assert mails[1].subject == "💚 build recovered · local"
    again = finished(service, start(server, "build"))
    gate = start(server, "deploy")
    wait_for(lambda: len(sent_to(captured, SLACK_HOOK)) == 2, what="the waiting message")
    waiting = sent_to(captured, SLACK_HOOK)[1]["attachments"][0]
    assert waiting["title"] == "⏸️ deploy waits for approval · local"
    assert "`gate`: ship 1.4?" in waiting["text"] and "from alice, @octo/release" in waiting["text"]
    assert f"strom approve {gate} gate" in waiting["text"] and f"{PUBLIC}/runs/{gate}#step-gate" in waiting["text"]
    wait_for(lambda: len(notify_lines(service, gate)) == 2, what="the waiting notification's log")
    assert len(smtp.mails) == 2, "a success after a success is no news; waiting goes to chat only"
    assert notify_lines(service, again.id) == [] and len(sent_to(captured, DISCORD_HOOK)) == 2


def test_notify_steps_and_unreachable_channels_never_change_a_runs_result(live, smtp, captured):
    service, server = live
    announce = finished(service, start(server, "announce"))
    assert announce.status is RunStatus.SUCCEEDED
    output = announce.steps["tell"].output
    assert (output["sent"], output["failed"]) == (2, 1)
    down = next(d for d in output["deliveries"] if d["channel"] == "down")
    assert down["attempts"] == 2 and not down["ok"] and down["target"].startswith("json://127.0.0.1:")
    [slack] = sent_to(captured, SLACK_HOOK)
    assert slack["attachments"][0]["title"] == "Release 2.0"
    assert slack["attachments"][0]["text"] == "*2.0* is out (key ***)", "Markdown for Slack, secret masked"
    log = [line.text for line in service.logs.read(announce.id) if line.step == "tell"]
    assert any(text.startswith("to down (json://127.0.0.1:") and "failed after 2 attempt(s)" in text for text in log)

    quiet = finished(service, start(server, "quiet"))  # the workspace's default rule: `down` on success
    assert quiet.status is RunStatus.SUCCEEDED
    [line] = wait_for(lambda: notify_lines(service, quiet.id), what="the failed delivery on the run's log")
    assert line.startswith("succeeded notification to down (json://127.0.0.1:") and "failed after 2 attempt(s)" in line
    assert service.runs.load(quiet.id).status is RunStatus.SUCCEEDED
    metrics = requests.get(
        f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKENS['viewer']}"}, timeout=10
    ).text
    assert "strom_notifications_failed_total 2.0" in metrics and "strom_notifications_sent_total 2.0" in metrics
    assert smtp.mails == [], "no rule sends these to mail"


def test_a_workflow_naming_a_channel_the_server_lacks_is_invalid_at_load(service_workspace, redis_url, smtp):
    folder = service_workspace(
        {
            ".strom/ci.yaml": """
        tasks:
          t:
            notify: [{ channels: [mail, pager] }]
            flow:
              a: { type: notify, channels: [chta], message: hi }
        """
        }
    )
    config = make_config(folder, redis_url, STROM_NOTIFICATIONS=json.dumps({"channels": channels(smtp)}))
    with stack(config, workers=0) as service, serving(config, service) as server:
        answer = requests.post(
            f"{server.url}/api/workspaces/local/tasks/t/execute",
            json={},
            headers={"Authorization": f"Bearer {TOKENS['admin']}"},
            timeout=10,
        )
    assert answer.status_code == 422
    problems = {(p["line"], p["code"], p["message"]) for p in answer.json()["error"]["problems"]}
    assert problems == {
        (3, "unknown-channel", "task 't': notify: notification channel 'pager' is not configured on the server"),
        (
            5,
            "unknown-channel",
            "task 't', step 'a': notification channel 'chta' is not configured on the server; did you mean \"chat\"?",
        ),
    }


def test_notify_test_reports_each_url(tmp_path, smtp, captured):
    config = tmp_path / "strom.yaml"
    config.write_text(json.dumps({"notifications": {"channels": channels(smtp), "timeout": "2s"}}))
    result = CliRunner().invoke(main, ["notify", "test", "mail", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0 and f"✓ sent  mailto://127.0.0.1:{smtp.port}\n" in result.output
    [mail] = smtp.wait_for_mails(1)
    assert mail.subject == "Strom test message (mail)" and mail.body.strip() == "Strom can reach this channel."
    captured.replace(responses.POST, DISCORD_HOOK, status=500, json={"message": "boom"})
    result = CliRunner().invoke(main, ["notify", "test", "chat", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 1
    assert "✓ sent  slack://" in result.output and "✗ failed  discord://" in result.output
    assert sent_to(captured, SLACK_HOOK)[0]["attachments"][0]["text"] == "*Strom can reach this channel.*"
    result = CliRunner().invoke(main, ["notify", "test", "mial", "--config", str(config)])
    assert (
        result.exit_code == 1
        and "no channel 'mial'; did you mean \"mail\"? (channels: chat, down, mail)" in result.output
    )


def test_notifications_run_as_rq_jobs_and_one_that_breaks_fails_in_rq_without_stopping_the_rest(live, smtp):
    from rq import Worker

    from runner.notify.notifier import FUNCTION, QUEUE
    from runner.store.queues import rq_queue

    service, server = live
    queue = rq_queue(QUEUE, service.rq_redis)
    broken = queue.enqueue_call(FUNCTION, args=({"event": "failed"},), result_ttl=0, failure_ttl=3600)
    wait_for(lambda: broken.id in queue.failed_job_registry.get_job_ids(), what="the broken job to fail in RQ")
    assert "KeyError: 'job'" in broken.latest_result().exc_string, "RQ keeps why it failed"
    failed = finished(service, start(server, "build", fail=True))
    [mail] = smtp.wait_for_mails(1)
    assert mail.subject == "❌ build failed · local"
    wait_for(lambda: len(notify_lines(service, failed.id)) == 3, what="the deliveries on the run's log")
    wait_for(lambda: queue.started_job_registry.get_job_ids() == [], what="the delivered job to leave RQ")
    assert queue.count == 0
    assert queue.failed_job_registry.get_job_ids() == [broken.id], "delivered jobs leave RQ; only the broken one stays"
    [runner] = wait_for(
        lambda: [w for w in Worker.all(queue=queue) if w.get_state() == "idle" and w.successful_job_count],
        what="the notifier's RQ worker to be idle after its jobs",
    )
    assert runner.name.endswith(".notify") and runner.failed_job_count == 1
