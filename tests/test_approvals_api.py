"""Approvals through the API and the CLI: the same rules as pull request comments — the step's
approvers (a token's name is the person), N distinct approvals, and no approving one's own run
when the workspace says so."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from service_env import make_config, serving, stack, wait_for

from runner.cli import main

PEOPLE = {
    "alice": "alice-token-0123456789abc",
    "bob": "bob-token-0123456789abcde",
    "eve": "eve-token-0123456789abcde",
    "ops": "ops-token-0123456789abcde",
}
ROLES = {"alice": "admin", "bob": "approver", "eve": "approver", "ops": "operator"}
WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      release:
        flow:
          gate: { type: approval, message: "ship it?", approvers: [alice, bob], required: 2 }
          ship: { type: script, script: "echo shipped", depends_on: [gate] }
      hotfix:
        flow:
          gate: { type: approval, message: "hotfix?" }
          ship: { type: script, script: "echo fixed", depends_on: [gate] }
    """
}


@pytest.fixture
def live(service_workspace, redis_url):
    folder = service_workspace(WORKSPACE)
    tokens = [{"name": name, "role": ROLES[name], "token": token} for name, token in PEOPLE.items()]
    config = make_config(
        folder,
        redis_url,
        STROM_TOKENS=json.dumps(tokens),
        STROM_WORKSPACES=json.dumps({"local": {"folder": str(folder), "approvals": {"self_approval": False}}}),
    )
    with stack(config) as service, serving(config, service) as server:
        yield server, service


def call(server, method: str, path: str, who: str, body: dict | None = None):
    return requests.request(
        method,
        f"{server.url}/api{path}",
        json=body or {},
        timeout=10,
        headers={"Authorization": f"Bearer {PEOPLE[who]}"},
    )


def start(server, service, task: str, who: str) -> str:
    answer = call(server, "POST", f"/workspaces/local/tasks/{task}/execute", who)
    assert answer.status_code == 201, answer.text
    run_id = answer.json()["id"]
    wait_for(lambda: service.runs.load(run_id).status.value == "waiting", what="the gate")
    return run_id


def cli(server, who: str, *args):
    result = CliRunner().invoke(
        main, list(args), env={"STROM_URL": server.url, "STROM_TOKEN": PEOPLE[who]}, catch_exceptions=False
    )
    return result.exit_code, result.output


def test_listed_approvers_decide_n_distinct_approvals_through_the_api_and_the_cli(live):
    server, service = live
    run_id = start(server, service, "release", "ops")
    refused = call(server, "POST", f"/runs/{run_id}/steps/gate/approve", "eve")
    assert (refused.status_code, refused.json()["error"]["message"]) == (
        403,
        "eve is not among the approvers of `gate` (alice, bob)",
    )
    assert call(server, "POST", f"/runs/{run_id}/steps/gate/approve", "ops").status_code == 403, "role operator"
    first = call(server, "POST", f"/runs/{run_id}/steps/gate/approve", "alice")
    assert first.status_code == 200 and first.json()["status"] == "waiting"
    again = call(server, "POST", f"/runs/{run_id}/steps/gate/approve", "alice")
    assert (again.status_code, again.json()["error"]["message"]) == (
        403,
        "alice has already approved `gate`; it needs 2 different people",
    )
    code, out = cli(server, "bob", "approve", run_id, "gate")
    assert code == 0, out
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
    assert state.status.value == "succeeded" and state.steps["gate"].output["approved_by"] == "alice, bob"
    code, out = cli(server, "eve", "status", run_id)
    assert code == 0
    gate_lines = [line for line in out.splitlines() if "approved by" in line]
    assert (
        len(gate_lines) == 1
        and "approved by alice (" in gate_lines[0]
        and "UTC), approved by bob (" in gate_lines[0].replace("; ", ", ")
    )


def test_who_started_a_run_may_reject_but_not_approve_it(live):
    server, service = live
    run_id = start(server, service, "hotfix", "alice")
    own = call(server, "POST", f"/runs/{run_id}/steps/gate/approve", "alice")
    assert (own.status_code, own.json()["error"]["message"]) == (
        403,
        "alice wrote this change and may not approve its gate `gate` "
        "(the workspace sets approvals.self_approval: false)",
    )
    code, out = cli(server, "eve", "status", run_id)
    assert "waiting: hotfix? (needs 1 of anyone allowed to approve)" in out
    code, out = cli(server, "alice", "reject", run_id, "gate", "--reason", "wrong branch")
    assert code == 0 and "rejected by alice" in out and ": wrong branch" in out
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
    assert state.status.value == "failed" and state.steps["gate"].error == "rejected by alice: wrong branch"

    other = start(server, service, "hotfix", "alice")
    assert call(server, "POST", f"/runs/{other}/steps/gate/approve", "eve").status_code == 200
    wait_for(lambda: service.runs.load(other).status.value == "succeeded", what="the approved run")
