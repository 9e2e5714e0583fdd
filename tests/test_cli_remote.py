"""The CLI as a client of a live server: trigger, runs, status, logs, cancel, rerun, approve, reject."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from service_env import LiveServer, make_config, remote_cli, stack, wait_for

from runner.cli import main

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      hello:
        input:
          name: { type: string, default: world }
        flow:
          greet: { type: script, script: 'echo "hello $INPUT_NAME"', input: { name: "{{ input.name }}" } }
      broken:
        flow:
          fail: { type: script, script: "echo oops >&2; exit 3" }
      gate:
        flow:
          ask: { type: approval, message: "go?" }
          go: { type: script, script: "echo went", depends_on: [ask] }
      slow:
        flow:
          sleep: { type: script, script: "echo zzz; sleep 30" }
    """
}


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service:
        server = LiveServer(config, service)
        yield server, service
        server.stop()


def cli(server, *args, token="admin"):
    return remote_cli(server, *args, token=token)


def test_trigger_follow_prints_lines_and_the_result(live):
    server, _ = live
    code, out = cli(server, "trigger", "hello", "-i", "name=cli", "-f")
    assert code == 0, out
    assert "greet          │ hello cli" in out and "✓ succeeded" in out
    code, out = cli(server, "trigger", "broken", "--follow")
    assert code == 1 and "oops" in out and "exit code 3" in out


def test_trigger_status_runs_and_logs(live):
    server, service = live
    code, out = cli(server, "trigger", "hello")
    run_id = out.split()[0]
    assert code == 0 and "/runs/" + run_id in out
    wait_for(lambda: service.runs.load(run_id).status.terminal, what="the run")
    code, out = cli(server, "status", run_id)
    assert code == 0 and "✓ succeeded" in out and "greet" in out
    code, out = cli(server, "status", run_id, "--json")
    assert json.loads(out)["steps"][0]["status"] == "succeeded"
    code, out = cli(server, "logs", run_id)
    assert out == "[greet] hello world\n"
    code, out = cli(server, "logs", run_id, "greet", "-f")
    assert out == "hello world\n"
    code, out = cli(server, "runs", "--task", "hello")
    assert run_id in out and "local/hello" in out
    code, out = cli(server, "rerun", run_id)
    assert code == 0 and out.split()[0] != run_id


def test_cancel_approve_and_reject(live):
    server, service = live
    _, out = cli(server, "trigger", "slow")
    slow = out.split()[0]
    wait_for(lambda: service.logs.read(slow), what="the slow step to print")
    code, out = cli(server, "cancel", slow, "--reason", "bored")
    assert code == 0
    wait_for(lambda: service.runs.load(slow).status.value == "cancelled", what="the cancel")
    _, out = cli(server, "trigger", "gate")
    gate = out.split()[0]
    code, out = cli(server, "approve", gate, "ask", token="approver")
    assert code == 0 and "ask" in out
    wait_for(lambda: service.runs.load(gate).status.value == "succeeded", what="the approved run")
    _, out = cli(server, "trigger", "gate")
    second = out.split()[0]
    code, out = cli(server, "reject", second, "ask", "--reason", "not today", token="approver")
    assert "rejected by approver: not today" in out


def test_client_errors_are_one_line_messages(live):
    server, _ = live
    code, out = cli(server, "trigger", "hello", token="viewer")
    assert code == 1 and "token 'viewer' (role viewer) may not run (HTTP 403)" in out
    code, out = cli(server, "trigger", "hello", "-i", "nme=x")
    assert code == 1 and "invalid input for task 'hello'" in out and "nme: unknown input" in out
    code, out = cli(server, "status", "nope")
    assert code == 1 and "no run nope (HTTP 404)" in out
    result = CliRunner().invoke(main, ["runs"], env={"STROM_URL": "http://127.0.0.1:9", "STROM_TOKEN": "x"})
    assert result.exit_code == 1 and "cannot reach the Strom server at http://127.0.0.1:9" in result.output


def test_events_lists_what_came_in_and_what_became_of_it(live):
    from runner.forges.event import RepoEvent

    server, service = live
    event = RepoEvent(
        source="github",
        kind="push",
        repo="octo/app",
        ref="refs/heads/dev",
        branch="dev",
        sha="ab" * 20,
        delivery="d-42",
    )
    event_id, _ = service.repo_events.receive("local", event.to_dict(), ignored="branch 'dev' is not followed")
    code, out = cli(server, "events", token="viewer")
    assert code == 0
    assert f"{event_id}  " in out and "github push refs/heads/dev abababa" in out
    assert "↷ ignored  branch 'dev' is not followed" in out
    code, out = cli(server, "events", event_id, "--json", token="viewer")
    detail = json.loads(out)
    assert (detail["status"], detail["event"]["delivery"], detail["runs"]) == ("ignored", "d-42", [])
    code, out = cli(server, "events", "nope", token="viewer")
    assert code != 0 and "no event nope" in out


def test_following_survives_the_server_closing_long_streams(live, monkeypatch):
    import webhooks.api.logs as logs_api

    server, service = live
    monkeypatch.setattr(logs_api, "MAX_STREAM_S", 0.3)
    monkeypatch.setattr(logs_api, "HEARTBEAT_MS", 100)
    _, out = cli(server, "trigger", "slow")
    slow = out.split()[0]
    from threading import Timer

    from runner.engine import Cancel

    Timer(1.5, lambda: service.orchestrator.apply(slow, Cancel("enough"))).start()
    _code, out = cli(server, "logs", slow, "-f")
    assert service.runs.load(slow).status.terminal, "following went on until the run ended"
    assert out.splitlines() == ["[sleep] zzz"], "the line once, although the stream was reopened several times"
