"""Command lines of comments, and who may decide an approval gate (with a stub forge answering)."""

from __future__ import annotations

import pytest
import redis

from runner.engine import RunState, StepRun, StepStatus
from runner.gitops.commands import BUILTIN, is_stroms_own, key_values, parse_commands, unknown_command
from runner.gitops.gates import Gate, Gatekeeper, change_authors, waiting_gates
from runner.workspace_config import WorkspaceConfig


@pytest.mark.parametrize(
    "body, expected",
    [
        ("/approve", [("approve", ())]),
        (
            "LGTM!\n\n  /approve deploy ship it\n/run lint fast=1",
            [("approve", ("deploy", "ship", "it")), ("run", ("lint", "fast=1"))],
        ),
        ("```\n/cancel\n```\n~~~\n/cancel\n~~~\n> /approve\n/retry", [("retry", ())]),
        ("/usr/bin is missing\n/ deploy\n/", []),
        ('/reject gate "not today"', [("reject", ("gate", "not today"))]),
        ("/Approve", [("approve", ())]),
        ("please /approve", []),
    ],
)
def test_command_lines(body, expected):
    assert [(c.name, c.words) for c in parse_commands(body)] == expected
    assert [c.index for c in parse_commands(body)] == list(range(len(expected)))


def test_key_values_name_the_word_that_is_not_one():
    assert key_values(["env=prod", "note=a=b", "empty="]) == {"env": "prod", "note": "a=b", "empty": ""}
    with pytest.raises(ValueError, match="'prod' is not key=value"):
        key_values(["env=prod", "prod"])
    with pytest.raises(ValueError, match="'=x' is not key=value"):
        key_values(["=x"])


def test_unknown_command_lists_every_command_and_suggests_one():
    text = unknown_command("deplyo", {"deploy", "approve"})
    assert text.startswith('`/deplyo` is not a command here; did you mean "deploy"?\n\nCommands:\n')
    assert all(f"- {line}" in text for line in BUILTIN.values())
    assert "- `/deploy`: defined by a `comment` trigger in `.strom/`" in text
    assert text.count("`/approve") == 1, "a trigger cannot shadow a built-in command"
    assert unknown_command("zzz", ()).startswith("`/zzz` is not a command here.\n")
    assert not any(line.startswith("/") for line in text.splitlines())


def test_stroms_own_comments_are_recognised():
    assert is_stroms_own("### Strom\n<!-- strom:summary -->") and is_stroms_own("x\n<!-- strom:reply -->")
    assert not is_stroms_own("/approve")


# ------------------------------------------------------------------ gates


def gate_state(approvers=(), required=1, decisions=(), event=None, status=StepStatus.WAITING) -> RunState:
    approval = {"message": "go?", "approvers": list(approvers), "required": required, "decisions": list(decisions)}
    step = StepRun("gate", "gate", status=status, approval=approval)
    other = StepRun("build", "build", status=StepStatus.SUCCEEDED)
    return RunState("r1", "app", "deploy", 0.0, steps={"build": other, "gate": step}, event=event)


class StubApi:
    def __init__(self, writers=(), teams=None):
        self.writers = set(writers)
        self.teams = teams or {}
        self.asked: list[tuple] = []

    def can_write(self, user):
        self.asked.append(("write", user))
        return user in self.writers

    def in_team(self, team, user):
        self.asked.append(("team", team, user))
        if team == "octo/broken":
            raise ConnectionError("forge down")
        return user in self.teams.get(team, ())


class StubService:
    def __init__(self, redis_url, api):
        self.redis = redis.Redis.from_url(redis_url, decode_responses=True)
        self.api = api

    def forge_api(self, ws):
        return self.api


def keeper(redis_url, api=None, **ws) -> Gatekeeper:
    return Gatekeeper(StubService(redis_url, api), WorkspaceConfig("app", **ws))


def test_waiting_gates_are_the_waiting_approval_steps():
    waiting, done = gate_state(), gate_state(status=StepStatus.SUCCEEDED)
    assert [(g.run.id, g.name) for g in waiting_gates([waiting, done])] == [("r1", "gate")]


def test_listed_approvers_and_team_members_decide_and_nobody_else(redis_url):
    api = StubApi(writers={"mallory"}, teams={"octo/release": {"carol"}})
    state = gate_state(approvers=["Alice", "@octo/release", "@octo/broken"])
    gate = Gate(state, state.steps["gate"])
    k = keeper(redis_url, api)
    assert k.refusal(gate, "alice", True) is None, "names match without regard to case"
    assert k.refusal(gate, "carol", False) is None
    assert (
        k.refusal(gate, "mallory", True, association="OWNER")
        == "mallory is not among the approvers of `gate` (Alice, @octo/release, @octo/broken)"
    ), "write access does not replace the list"
    assert k.refusal(gate, "mallory", True, role_decides=True).startswith("mallory is not among")
    assert ("write", "mallory") not in api.asked


def test_without_approvers_write_access_decides_and_answers_are_cached(redis_url):
    api = StubApi(writers={"dev"})
    state = gate_state()
    gate = Gate(state, state.steps["gate"])
    k = keeper(redis_url, api)
    assert k.refusal(gate, "dev", True) is None
    assert k.refusal(gate, "dev", True) is None
    assert keeper(redis_url, api).refusal(gate, "dev", True) is None
    assert api.asked == [("write", "dev")], "asked once, then remembered for a while"
    assert k.refusal(gate, "guest", True) == "guest may not decide `gate`: that needs write access to the repository"
    assert k.refusal(gate, "dev", True, association="CONTRIBUTOR") is not None, "the payload may rule out"
    assert k.refusal(gate, "x", True, association="COLLABORATOR") is not None, "the forge decides, not the payload"
    assert k.refusal(gate, "tok", True, role_decides=True) is None
    without_forge = keeper(redis_url, None)
    assert without_forge.refusal(gate, "dev2", True) is not None, "no forge, no association: no"
    assert without_forge.refusal(gate, "dev3", True, association="MEMBER") is None, "no forge: the payload says"


def test_an_unreachable_forge_means_no_and_is_not_remembered(redis_url):
    api = StubApi(teams={"octo/broken": {"carol"}})
    state = gate_state(approvers=["@octo/broken"])
    gate = Gate(state, state.steps["gate"])
    k = keeper(redis_url, api)
    assert k.refusal(gate, "carol", True) is not None
    assert k.refusal(gate, "carol", True) is not None
    assert api.asked.count(("team", "octo/broken", "carol")) == 2


def test_the_same_person_counts_once_and_authors_may_reject_but_not_approve(redis_url):
    state = gate_state(
        required=2,
        decisions=[{"by": "Bob", "approved": True, "reason": None, "at": "x"}],
        event={"kind": "pull_request", "actor": "someone", "pr": {"number": 3, "author": "Alice"}},
    )
    gate = Gate(state, state.steps["gate"])
    k = keeper(redis_url, StubApi(writers={"alice", "bob"}), self_approval=False)
    assert k.refusal(gate, "bob", True) == "bob has already approved `gate`; it needs 2 different people"
    assert k.refusal(gate, "alice", True) == (
        "alice wrote this change and may not approve its gate `gate` "
        "(the workspace sets approvals.self_approval: false)"
    )
    assert k.refusal(gate, "alice", False) is None
    assert keeper(redis_url, StubApi(writers={"alice"})).refusal(gate, "alice", True) is None, "allowed by default"
    nameless = gate_state(event={"kind": "pull_request", "pr": {"number": 3, "author": ""}})
    assert "did not say who wrote" in k.refusal(Gate(nameless, nameless.steps["gate"]), "bob", True)


@pytest.mark.parametrize(
    "event, expected",
    [
        ({"kind": "pull_request", "actor": "pusher", "pr": {"number": 1, "author": "Author"}}, {"author", "pusher"}),
        ({"kind": "comment", "actor": "asker", "pr": {"number": 1, "author": "Author"}}, {"author"}),
        ({"kind": "push", "actor": "Pusher"}, {"pusher"}),
        ({"kind": "manual", "actor": "alice"}, {"alice"}),
        (None, set()),
    ],
)
def test_change_authors(event, expected):
    assert change_authors(gate_state(event=event)) == expected
