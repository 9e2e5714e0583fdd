"""Runs started by hand are rate-limited per token and per workspace (429 with Retry-After, nothing
counted when refused); repository events never are. Against a live server and its Redis."""

from __future__ import annotations

import json

import pytest
import requests
from service_env import TOKENS, config_env, csrf, live_stack, signed_in, wait_for

from runner.config import ConfigError, load_config
from runner.store import RunFilter

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      hello:
        flow:
          s: { type: script, script: "echo hi" }
    triggers:
      hook: { type: webhook, name: hello-hook, task: hello }
    """
}


def _config(workspace, redis_url, **rates):
    env = config_env(redis_url, STROM_RATE_LIMITS=json.dumps(rates))
    return load_config(environ=env, base_dir=workspace)


def _auth(role):
    return {"Authorization": f"Bearer {TOKENS[role]}"}


@pytest.fixture
def live(service_workspace, redis_url):
    config = _config(service_workspace(WORKSPACE), redis_url, per_token="3/minute", per_workspace="5/minute")
    with live_stack(config) as (service, server):
        yield service, f"http://127.0.0.1:{server.port}"


def test_manual_runs_and_reruns_are_limited_per_token_then_per_workspace(live):
    service, url = live
    execute = f"{url}/api/workspaces/local/tasks/hello/execute"
    started = [requests.post(execute, json={}, headers=_auth("operator"), timeout=10) for _ in range(3)]
    assert [r.status_code for r in started] == [201, 201, 201]
    refused = requests.post(execute, json={}, headers=_auth("operator"), timeout=10)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    error = refused.json()["error"]
    assert error["code"] == "too_many_requests"
    assert "token 'operator' may start 3 per 1 minute" in error["message"] and "rate_limits" in error["message"]
    assert len(service.runs.list(RunFilter(), limit=50).runs) == 3, "a refused start starts nothing"

    others = [requests.post(execute, json={}, headers=_auth("admin"), timeout=10) for _ in range(3)]
    assert [r.status_code for r in others] == [201, 201, 429], "the workspace's 5 a minute, whoever asks"
    assert "workspace 'local' may start 5 per 1 minute" in others[2].json()["error"]["message"]
    rerun = requests.post(f"{url}/api/runs/{started[0].json()['id']}/rerun", headers=_auth("admin"), timeout=10)
    assert rerun.status_code == 429 and "Retry-After" in rerun.headers

    missing = requests.post(f"{url}/api/workspaces/nope/tasks/hello/execute", json={}, headers=_auth("operator"))
    assert missing.status_code == 404, "an unknown workspace is not found, not counted: no key per made-up name"
    assert not [k for k in service.redis.keys("strom:rate:*") if "nope" in k]


def test_repository_events_are_never_limited(live):
    service, url = live
    for _ in range(8):  # past both limits
        answer = requests.post(f"{url}/hooks/hello-hook", json={"n": 1}, headers=_auth("operator"), timeout=10)
        assert answer.status_code in (200, 201, 202), answer.text
    wait_for(lambda: len(service.runs.list(RunFilter(), limit=50).runs) == 8, 20, what="eight runs from eight webhooks")


def test_the_ui_answers_429_with_retry_after(service_workspace, redis_url):
    config = _config(service_workspace(WORKSPACE), redis_url, per_token="1/minute", per_workspace="off")
    with live_stack(config) as (_service, server):
        session = signed_in(server, "operator")
        base = server.url
        page = session.get(f"{base}/tasks?workspace=local&task=hello", timeout=10)
        token = csrf(page.text)
        first = session.post(f"{base}/tasks/local/hello/run", data={"csrf_token": token}, timeout=10)
        assert first.status_code == 200 and "/runs/" in first.url
        second = session.post(f"{base}/tasks/local/hello/run", data={"csrf_token": token}, allow_redirects=False)
        assert second.status_code == 429 and int(second.headers["Retry-After"]) >= 1
        assert "too many runs started by hand" in second.text


@pytest.mark.parametrize(
    "value, message",
    [
        ("lots", "rate_limits.per_token: 'lots' is not a rate"),
        ("30 every minute", "is not a rate"),
    ],
)
def test_a_bad_rate_names_the_key_and_the_fix(tmp_path, value, message):
    (tmp_path / "strom.yaml").write_text(f"rate_limits:\n  per_token: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "strom.yaml", environ={})
    text = str(caught.value)
    assert message in text and "strom.yaml:2:14" in text and "e.g. 30/minute or 5 per second, or off" in text


def test_off_and_defaults(tmp_path):
    (tmp_path / "strom.yaml").write_text("rate_limits:\n  per_token: off\n  per_workspace: 100/hour\n")
    config = load_config(tmp_path / "strom.yaml", environ={})
    assert (config.rate_per_token, config.rate_per_workspace) == (None, "100/hour")
    defaults = load_config(None, environ={})
    assert (defaults.rate_per_token, defaults.rate_per_workspace) == ("30/minute", "30/minute")
