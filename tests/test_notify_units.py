"""Notification parts on their own: default messages, the server's channels, Apprise config files
with tags, and the `notify:` rules of `.strom/`."""

from __future__ import annotations

import json

import pytest
import responses

from runner.config import ConfigError, load_config
from runner.engine import RunState, RunStatus, StepRun, StepStatus
from runner.forges.links import commit_url
from runner.notify.config import Channel
from runner.notify.messages import run_message, trigger_text, waiting_message
from runner.notify.send import Message, deliver
from runner.spec import load_texts

SHA = "1a2b3c4d5e6f77889900aabbccddeeff00112233"


def push_run(**changes) -> RunState:
    steps = {
        "lint": StepRun("lint", "lint", status=StepStatus.SUCCEEDED),
        "migrate": StepRun(
            "migrate",
            "migrate",
            status=StepStatus.FAILED,
            error="exit code 1: " + "x" * 400 + ' relation "users" does not exist',
        ),
    }
    values = {
        "id": "ab12cd34",
        "workspace": "app",
        "task": "deploy",
        "created_at": 100.0,
        "started_at": 100.0,
        "finished_at": 172.0,
        "status": RunStatus.FAILED,
        "steps": steps,
        "source": "github",
        "trigger": "pushes",
        "event": {"kind": "push", "branch": "main", "actor": "alice"},
        "commit": SHA,
        "git": {"sha": SHA, "branch": "main", "title": "Fix the login form"},
    }
    values.update(changes)
    return RunState(**values)


def test_a_failed_run_says_what_where_who_which_commit_which_steps_and_where_to_look():
    url = commit_url("github", "https://api.github.com", "octo/app", SHA)
    message = run_message(push_run(), "failed", "https://strom.example.com/runs/ab12cd34", url)
    assert message.title == "❌ deploy failed · app" and message.kind == "failure"
    lines = message.markdown.splitlines()
    assert lines[0] == "failed in 1m12s · push to main by alice"
    assert lines[1] == f"commit [`1a2b3c4`](https://github.com/octo/app/commit/{SHA}) on main: Fix the login form"
    assert lines[2] == "failed steps:"
    assert lines[3].startswith("- `migrate`: …") and lines[3].endswith('relation "users" does not exist')
    assert len(lines[3]) < 320, "only the tail of a long error"
    assert lines[-1] == "[Open run ab12cd34](https://strom.example.com/runs/ab12cd34)"
    text = message.text.splitlines()
    assert (
        text[1] == "commit 1a2b3c4 on main: Fix the login form"
        and text[2] == f"https://github.com/octo/app/commit/{SHA}"
    )
    assert "`" not in message.text and text[-1] == "Run: https://strom.example.com/runs/ab12cd34"


def test_a_recovery_and_a_run_without_a_commit():
    state = push_run(
        status=RunStatus.SUCCEEDED, steps={}, commit=None, git=None, source="scheduler", trigger="nightly", event=None
    )
    message = run_message(state, "recovered", "https://s/runs/ab12cd34")
    assert message.title == "💚 deploy recovered · app" and message.kind == "success"
    assert message.text.splitlines() == ["succeeded in 1m12s · schedule nightly", "Run: https://s/runs/ab12cd34"]


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({}, "push to main by alice"),
        ({"event": {"kind": "tag", "tag": "v1", "actor": "bob"}}, "tag v1 by bob"),
        (
            {"event": {"kind": "pull_request", "actor": "carol", "pr": {"number": 7, "action": "opened"}}},
            "pull request #7 (opened) by carol",
        ),
        (
            {
                "event": {
                    "kind": "comment",
                    "actor": "dev",
                    "pr": {"number": 7},
                    "comment": {"body": "/run lint\nthanks"},
                }
            },
            "comment /run lint on #7 by dev",
        ),
        (
            {"event": {"kind": "manual", "actor": "alice"}, "source": "api", "trigger": None},
            "started from the API by alice",
        ),
        ({"event": {"kind": "push"}, "source": "rerun"}, "re-run of a push run"),
        ({"event": None, "source": "hook", "trigger": "deploy-hook"}, "webhook deploy-hook"),
    ],
)
def test_trigger_text(changes, expected):
    assert trigger_text(push_run(**changes)) == expected


def test_a_waiting_gate_says_who_may_approve_and_how():
    gate = StepRun(
        "gate",
        "gate",
        status=StepStatus.WAITING,
        approval={"message": "ship 1.4?", "approvers": ["alice", "@octo/release"], "required": 2},
    )
    state = push_run(
        status=RunStatus.WAITING,
        steps={"gate": gate},
        event={"kind": "pull_request", "actor": "dev", "pr": {"number": 9, "action": "opened"}},
    )
    message = waiting_message(state, "gate", "https://s/runs/ab12cd34")
    assert message.title == "⏸️ deploy waits for approval · app" and message.kind == "warning"
    assert message.markdown.splitlines() == [
        "`gate`: ship 1.4?",
        "needs 2 approvals from alice, @octo/release · pull request #9 (opened) by dev",
        "commit `1a2b3c4` on main: Fix the login form",
        "approve: comment `/approve gate` or `/reject gate <reason>` on #9, or `strom approve ab12cd34 gate`",
        "[Open run ab12cd34](https://s/runs/ab12cd34#step-gate)",
    ]
    assert "`" not in message.text


@pytest.mark.parametrize(
    "kind, api, expected",
    [
        ("github", "https://api.github.com", "https://github.com/o/r/commit/abc"),
        ("github", "https://ghe.example.com/api/v3", "https://ghe.example.com/o/r/commit/abc"),
        ("gitlab", "https://gitlab.com/api/v4", "https://gitlab.com/o/r/-/commit/abc"),
        ("gitea", "https://codeberg.org/api/v1", "https://codeberg.org/o/r/commit/abc"),
        (None, None, None),
    ],
)
def test_commit_links(kind, api, expected):
    assert commit_url(kind, api, "o/r", "abc") == expected


# ------------------------------------------------------------------ the server's channels


def test_channels_from_lists_single_urls_the_environment_and_apprise_config_files(tmp_path):
    apprise_file = tmp_path / "apprise.yml"
    apprise_file.write_text(
        "urls:\n  - json://hooks.example.com/oncall:\n      tag: oncall\n"
        "  - json://hooks.example.com/dev:\n      tag: dev\n"
    )
    config = tmp_path / "strom.yaml"
    config.write_text(
        json.dumps(
            {
                "notifications": {
                    "timeout": "5s",
                    "attempts": 2,
                    "channels": {
                        "chat": ["slack://a/b/c", {"env": "DISCORD_URL"}],
                        "ops": "mailtos://u:p@mail.example.com",
                        "oncall": {"config": "apprise.yml", "tags": ["oncall"]},
                    },
                }
            }
        )
    )
    loaded = load_config(config, environ={"DISCORD_URL": "discord://1/2"})
    settings = loaded.notifications
    assert (settings.timeout, settings.attempts) == (5.0, 2)
    assert settings.channels["chat"] == Channel("chat", ("slack://a/b/c", "discord://1/2"))
    assert settings.channels["ops"].urls == ("mailtos://u:p@mail.example.com",)
    assert settings.channels["oncall"] == Channel("oncall", (), apprise_file.resolve(), ("oncall",))
    assert apprise_file.resolve() in loaded.sensitive_paths, "steps never see the Apprise config file"
    assert "u:p" not in repr(settings), "URLs may hold credentials"


def test_channel_mistakes_are_configuration_errors(tmp_path):
    config = tmp_path / "strom.yaml"
    config.write_text(
        json.dumps(
            {
                "notifications": {
                    "channels": {"a": [{"env": "MISSING_URL"}], "b": 42, "c": {"config": "nope.yml"}, "d": []}
                }
            }
        )
    )
    with pytest.raises(ConfigError) as raised:
        load_config(config, environ={})
    text = str(raised.value)
    assert "environment variable 'MISSING_URL' is not set" in text
    assert "notifications channel 'b' must be a list of Apprise URLs" in text
    assert "Apprise config file" in text and "nope.yml does not exist" in text
    assert "notifications channel 'd' has no URLs" in text


def test_an_apprise_config_file_sends_only_to_the_channels_tags(tmp_path):
    apprise_file = tmp_path / "apprise.yml"
    apprise_file.write_text(
        "urls:\n  - json://hooks.example.com/oncall:\n      tag: oncall\n"
        "  - json://hooks.example.com/dev:\n      tag: dev\n"
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, "http://hooks.example.com/oncall")
        mock.add(responses.POST, "http://hooks.example.com/dev")
        results = deliver(
            Channel("oncall", (), apprise_file, ("oncall",)), Message("t", "**b**", "b", "failure"), attempts=1
        )
        assert [call.request.url for call in mock.calls] == ["http://hooks.example.com/oncall"]
        body = json.loads(mock.calls[0].request.body)
        assert (body["title"], body["message"], body["type"]) == ("t", "**b**", "failure")
    assert [(r.ok, r.target) for r in results] == [(True, "json://hooks.example.com")], "no path: it may hold a token"


def test_a_url_apprise_does_not_know_fails_alone(tmp_path):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(responses.POST, "http://hooks.example.com/x")
        results = deliver(
            Channel("c", ("nonsense://x", "json://hooks.example.com/x")),
            Message("t", "b", "b"),
            attempts=3,
            sleep=lambda s: None,
        )
    assert [(r.ok, r.target, r.attempts) for r in results] == [
        (False, "nonsense://…", 1),
        (True, "json://hooks.example.com", 1),
    ]
    assert "not an Apprise URL" in results[0].error


def test_a_failing_url_is_retried_with_backoff_then_reported_with_apprises_reason():
    slept = []
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, "http://hooks.example.com/x", status=503)
        [result] = deliver(
            Channel("c", ("json://hooks.example.com/x",)),
            Message("t", "b", "b"),
            attempts=3,
            backoff=0.5,
            sleep=slept.append,
        )
        assert len(mock.calls) == 3
    assert slept == [0.5, 1.0] and not result.ok and result.attempts == 3
    assert "503" in result.error


# ------------------------------------------------------------------ rules in .strom/


def test_notify_rules_default_events_and_their_mistakes():
    result = load_texts(
        {
            ".strom/a.yaml": """
tasks:
  t:
    notify:
      - { channels: [chat] }
      - { channels: [], events: [failed] }
      - { channels: [mail], events: [failed, recoverd], branches: [main], colour: red }
    flow:
      a: { type: script, script: "true" }
notify: { channels: [chat] }
"""
        }
    )
    messages = [(p.line, p.code, p.message) for p in result.problems]
    assert messages == [
        (6, "missing-field", "task 't': notify[1]: `channels` is empty"),
        (7, "bad-value", "task 't': notify[2]: unknown event 'recoverd'; did you mean \"recovered\"?"),
        (7, "unknown-key", "task 't': notify[2]: unknown key 'colour'"),
        (10, "wrong-type", ".strom/a.yaml: notify must be a list of rules, got a mapping"),
    ]
    ok = load_texts(
        {
            ".strom/a.yaml": "tasks:\n  t:\n    notify: [{ channels: [chat] }]\n"
            "    flow: { a: { type: script, script: x } }\n"
        }
    ).workspace
    assert ok.tasks["t"].notify[0].events == ("failed", "timed_out", "waiting", "recovered")


# ------------------------------------------------------------------ who hears of what


class _Jobs:
    def __init__(self, runs):
        self.runs = {r.id: r for r in runs}

    def load(self, job_id):
        return self.runs.get(job_id)

    def list(self, flt, limit=50, before=None):
        from runner.store import RunPage

        found = sorted(
            (r for r in self.runs.values() if r.task == flt.task and (before is None or r.created_at < before)),
            key=lambda r: r.created_at,
            reverse=True,
        )
        return RunPage(found[:limit], None)


class _Service:
    def __init__(self, runs):
        from runner.config import Config

        self.runs = _Jobs(runs)
        self.config = Config()


def run(run_id: str, at: float, status: RunStatus, branch: str = "main", **changes) -> RunState:
    return push_run(id=run_id, created_at=at, status=status, git={"branch": branch}, **changes)


@pytest.mark.parametrize(
    "history, expected",
    [
        ([run("a", 1, RunStatus.FAILED)], True),
        ([run("a", 1, RunStatus.FAILED), run("b", 2, RunStatus.CANCELLED)], True),
        ([run("a", 1, RunStatus.TIMED_OUT), run("b", 2, RunStatus.SUCCEEDED)], False),
        ([run("a", 1, RunStatus.FAILED, branch="dev")], False),
        ([], False),
    ],
)
def test_recovered_is_the_first_success_after_a_failure_on_the_branch(history, expected):
    from runner.notify.notifier import Notifier

    now = run("z", 10, RunStatus.SUCCEEDED)
    assert Notifier(_Service([*history, now])).recovered(now) is expected


def test_a_retried_runs_own_attempts_do_not_count_but_a_rerun_of_a_failure_recovers():
    from runner.notify.notifier import Notifier

    first = run("a", 1, RunStatus.SUCCEEDED)
    failed_attempt = run("b", 2, RunStatus.FAILED)
    retried = run("c", 3, RunStatus.SUCCEEDED, attempt=2, retry_of="b")
    assert Notifier(_Service([first, failed_attempt, retried])).recovered(retried) is False
    rerun = run("d", 3, RunStatus.SUCCEEDED, retry_of="b", source="rerun")
    assert Notifier(_Service([first, failed_attempt, rerun])).recovered(rerun) is True


def test_untrusted_runs_and_children_notify_nobody():
    from runner.notify.notifier import rules_for
    from runner.spec.model import Location, NotifyRule

    rule = NotifyRule(("chat",), ("failed",), Location("a", 1, 1))

    class Ctx:
        class task:
            notify = (rule,)

        workspace = None

    assert rules_for(push_run(), Ctx) == (rule,)
    assert rules_for(push_run(trusted=False), Ctx) == ()
    assert rules_for(push_run(parent_job="p"), Ctx) == ()


def test_text_from_outside_cannot_ping_a_whole_chat():
    from runner.notify.messages import plain

    assert "<!channel>" not in plain("fix <!channel> and <@U123>, @everyone @here")
    state = push_run(git={"branch": "main", "title": "<!channel> look"})
    assert "<!channel>" not in run_message(state, "failed", "https://s/r").markdown
