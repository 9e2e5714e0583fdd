"""Pausing a task or a trigger: its triggers do not fire (webhooks, job chains, cron ticks), each skip is
recorded and counted; runs started by hand still start; resuming lets it fire again. Live stack, CLI, API, UI."""

from __future__ import annotations

import time

import pytest
import requests
from click.testing import CliRunner
from service_env import TOKENS, LiveServer, csrf, make_config, remote_cli, signed_in, stack, wait_for

from runner.cli import main
from runner.service.cron import Cron
from runner.store import RunFilter, keys

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      deploy:
        flow:
          s: { type: script, script: "echo deploying" }
      notify:
        flow:
          s: { type: script, script: "echo notified" }
    triggers:
      hook: { type: webhook, name: deploy-hook, task: deploy }
      after-deploy: { type: job, after: [deploy], task: notify }
      nightly: { type: scheduler, schedule: "every minute", task: deploy }
    """
}


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service:
        server = LiveServer(config, service)
        yield server, service
        server.stop()


def cli(server, *args, token="operator"):
    return remote_cli(server, *args, token=token)


def _runs(service, task):
    return service.runs.list(RunFilter(workspace="local", task=task), limit=50).runs


def _hook(server):
    answer = requests.post(f"{server.url}/hooks/deploy-hook", json={}, headers=_auth(), timeout=10)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def _auth(role="operator"):
    return {"Authorization": f"Bearer {TOKENS[role]}"}


def test_a_paused_task_skips_its_triggers_but_not_runs_started_by_hand(live):
    server, service = live
    code, out = cli(server, "pause", "deploy", "--reason", "release freeze")
    assert code == 0 and "task deploy paused" in out, out

    event = _hook(server)
    record = wait_for(lambda: (r := service.repo_events.load(event)) and r["status"] != "queued" and r, 10)
    assert record["status"] == "ignored" and record["runs"] == []
    assert record["reason"] == "trigger 'hook': skipped: task deploy paused by operator: release freeze"
    assert service.pauses.of("local")["task:deploy"]["skipped"] == 1, service.pauses.of("local")

    code, out = cli(server, "trigger", "deploy", "-f")
    assert code == 0 and "succeeded" in out, "a run started by hand still starts"
    wait_for(lambda: _runs(service, "notify"), 20, what="the job trigger after it: notify is not paused")

    tasks = requests.get(f"{server.url}/api/workspaces/local/tasks", headers=_auth(), timeout=10).json()["tasks"]
    paused = next(t for t in tasks if t["name"] == "deploy")["paused"]
    assert (paused["by"], paused["reason"], paused["skipped"]) == ("operator", "release freeze", 1)

    code, out = cli(server, "resume", "deploy")
    assert code == 0 and "task deploy resumed" in out
    event = _hook(server)
    record = wait_for(lambda: (r := service.repo_events.load(event)) and r["status"] != "queued" and r, 10)
    assert record["status"] == "done" and len(record["runs"]) == 1


def test_a_paused_trigger_and_the_cron_and_chain_paths(live):
    server, service = live
    answer = requests.post(f"{server.url}/api/workspaces/local/triggers/after-deploy/pause", headers=_auth(), json={})
    assert answer.status_code == 200 and answer.json()["paused"]["by"] == "operator"
    done = requests.post(f"{server.url}/api/workspaces/local/tasks/deploy/execute", json={}, headers=_auth()).json()
    wait_for(lambda: service.runs.load(done["id"]).status.terminal, 20, what="the deploy run")
    wait_for(lambda: service.pauses.of("local")["trigger:after-deploy"]["skipped"] == 1, 10, what="the chain's skip")
    assert _runs(service, "notify") == []

    requests.post(f"{server.url}/api/workspaces/local/tasks/deploy/pause", headers=_auth(), json={})
    cron = Cron(service, lease=_Always(), warn=lambda _: None)
    now = time.time()
    service.redis.set(keys.cron_last("local", "nightly"), now - 120)
    assert cron.fire(now) == [], "a paused task's cron tick is skipped"
    assert float(service.redis.get(keys.cron_last("local", "nightly"))) > now - 120, "and not fired later"
    requests.post(f"{server.url}/api/workspaces/local/tasks/deploy/resume", headers=_auth(), json={})
    service.redis.set(keys.cron_last("local", "nightly"), now - 120)
    assert len(cron.fire(now)) == 1


class _Always:
    def renew(self) -> bool:
        return True


def test_errors_and_roles(live):
    server, _ = live
    missing = requests.post(f"{server.url}/api/workspaces/local/tasks/deplyo/pause", headers=_auth(), json={})
    assert missing.status_code == 404 and "did you mean" in missing.json()["error"]["message"]
    viewer = requests.post(f"{server.url}/api/workspaces/local/tasks/deploy/pause", headers=_auth("viewer"), json={})
    assert viewer.status_code == 403
    code, out = cli(server, "pause", "nothing-here")
    assert code != 0 and "no task or trigger 'nothing-here'" in out


def test_the_ui_pauses_and_resumes(live):
    server, service = live
    browser = signed_in(server, "operator")
    page = browser.get(f"{server.url}/tasks?workspace=local", timeout=10).text
    assert "Pause deploy" in page and "Pause hook" in page
    token = csrf(page)
    after = browser.post(f"{server.url}/tasks/local/triggers/hook/pause", data={"csrf_token": token}, timeout=10)
    assert after.status_code == 200 and "Trigger hook paused" in after.text and "Resume hook" in after.text
    assert "trigger:hook" in service.pauses.of("local")
    browser.post(f"{server.url}/tasks/local/triggers/hook/resume", data={"csrf_token": token}, timeout=10)
    assert service.pauses.of("local") == {}


def test_strom_tasks_shows_what_is_paused_on_the_server(live, monkeypatch):
    from runner.cli import common

    server, _service = live
    monkeypatch.setattr(common.console, "_width", 200)  # it took its width from the environment when imported
    code, _ = cli(server, "pause", "deploy", "--task", "--reason", "release freeze")
    assert code == 0
    assert cli(server, "pause", "nightly")[0] == 0
    env = {"STROM_URL": server.url, "STROM_TOKEN": TOKENS["viewer"]}
    result = CliRunner().invoke(main, ["tasks", "-w", "local"], env=env, catch_exceptions=False)
    code, out = result.exit_code, result.output
    rows = {
        line.split()[0]: line for line in out.splitlines() if line.split() and line.split()[0] in ("deploy", "notify")
    }
    assert code == 0 and "paused by operator: release freeze (0 skipped)" in rows["deploy"], out
    assert "nightly (scheduler: Every minute) paused" in out and "active" in rows["notify"], out
    code, out = cli(server, "tasks", ".", "-w", "local")
    assert code == 2 and "not both" in out
