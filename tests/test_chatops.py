"""Approvals and pull request commands end to end: the fixtures' comment payloads (changed only in the
comment's body and author, and the pull request they name), signed, sent to a live server that
follows a real repository; a recording fake forge answers access questions and receives the
reactions, replies and summary comment Strom writes."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace

import pytest
import requests
from fake_forge import FakeForge
from forge_fixtures import FIXTURES
from git_env import commit, git
from gitops_env import (
    REPO,
    comment_hook,
    finished,
    gitea_pull_request,
    gitlab_merge_request,
    lines,
    make_gitops_config,
    post_github,
    post_to,
    pr_hook,
    processed,
)
from service_env import live_stack, serving, stack, wait_for

from runner.engine import RunStatus, StepStatus
from runner.store import RunFilter

TASKS = """
    tasks:
      deploy:
        input:
          env: { type: string, default: staging }
        flow:
          gate:
            type: approval
            message: "deploy {{ input.env }} at {{ git.short_sha }}?"
            approvers: [alice, bob, "@octo/release"]
            required: 2
          ship: { type: script, script: 'echo "shipping $(cat VERSION) to {{ input.env }}"', depends_on: [gate] }
      review:
        flow:
          gate: { type: approval, message: "looks right?" }
          after: { type: script, script: "echo reviewed", depends_on: [gate] }
      quick:
        flow:
          gate: { type: approval, timeout: 1s }
      flaky:
        flow:
          try: { type: script, script: 'test "$(cat VERSION)" = fixed || { echo "not fixed" >&2; exit 1; }' }
      slow:
        flow:
          wait: { type: script, script: "sleep 60" }
      ci:
        flow:
          check: { type: script, script: 'echo "ci $(cat VERSION)"' }
    """
WRITERS = {"dev": "write", "alice": "write", "bob": "write", "mallory": "read", "carol": "read"}
TEAMS = {"octo/release": ["carol"]}


def pipeline(triggers: str) -> str:
    return (
        TASKS.rstrip()
        + "\n    triggers:\n"
        + "".join(f"      {line.strip()}\n" for line in triggers.strip().splitlines())
    )


@pytest.fixture
def forge():
    with FakeForge("github", writers=WRITERS, teams=TEAMS) as fake:
        yield fake


@pytest.fixture
def live(tmp_path, redis_url, upstream, forge):
    with live_stack(make_gitops_config(tmp_path, redis_url, upstream[1], forge)) as pair:
        yield pair


def push_pr_head(work, number: int, triggers: str, version: str = "2") -> str:
    """main with the pipeline, and a branch for pull request `number` one commit ahead; its head sha."""
    commit(work, {"VERSION": "1\n", ".strom/ci.yaml": pipeline(triggers)}, "base")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", f"topic-{number}")
    head = commit(work, {"VERSION": f"{version}\n"}, f"change {number}")
    git(work, "push", "-q", "origin", f"topic-{number}:refs/pull/{number}/head")
    return head


def open_pr(service, server, work, number: int, triggers: str, author: str = "dev") -> tuple[str, list[str]]:
    head = push_pr_head(work, number, triggers)
    record = processed(service, pr_hook(server, number, "opened", head, f"topic-{number}", author, "MEMBER", False))
    assert record["status"] == "done", record
    return head, record["runs"]


def say(service, server, number: int, body: str, author: str, association: str = "MEMBER", pr_author: str = "dev"):
    """Comment on pull request `number` and wait until Strom has processed the comment."""
    return processed(service, comment_hook(server, number, body, author, association, pr_author, "MEMBER"))


def waiting(service, run_id: str):
    return wait_for(
        lambda: (s := service.runs.load(run_id)).status is RunStatus.WAITING and s,
        what=f"run {run_id} to wait for approval",
    )


def reactions(forge, count: int) -> list[str]:
    wait_for(lambda: len(forge.reactions()) >= count, what=f"{count} reactions")
    return [r["content"] for r in forge.reactions()]


def replies(forge, count: int, number: int) -> list[str]:
    wait_for(lambda: len(forge.replies(number)) >= count, what=f"{count} replies")
    return [body.removesuffix("\n<!-- strom:reply -->") for body in forge.replies(number)]


def summary(forge, number: int, containing: str) -> str:
    def found():
        bodies = [c["body"] for c in forge.comments() if c["number"] == number and "strom:summary" in c["body"]]
        return bodies and containing in bodies[0] and bodies[0]

    return wait_for(found, what=f"the summary comment to say {containing!r}")


# ------------------------------------------------------------------ approvals from comments


def test_approvers_approve_n_of_m_and_everyone_else_is_refused_with_a_reply(live, upstream, forge):
    service, server = live
    head, [run_id] = open_pr(service, server, upstream[0], 5, "gated: { type: pull_request, task: deploy }")
    state = waiting(service, run_id)
    assert state.steps["gate"].approval["message"] == f"deploy staging at {head[:7]}?"
    summary(forge, 5, "⏸️ `deploy` › `gate` waits for approval: deploy staging at")

    refused = say(service, server, 5, "/approve", "mallory", "CONTRIBUTOR")
    assert (refused["status"], refused["reason"]) == (
        "ignored",
        "mallory is not among the approvers of `gate` (alice, bob, @octo/release)",
    )
    first = say(service, server, 5, "Checked the plan.\n\n/approve", "alice")
    assert (first["status"], first["reason"]) == ("done", f"approved `gate` of run {run_id} (1 of 2 approvals)")
    assert service.runs.load(run_id).status is RunStatus.WAITING, "one approval of the two it needs"
    summary(forge, 5, "(1 of 2 approvals, from alice, bob, @octo/release)")
    twice = say(service, server, 5, "/approve gate", "alice")
    assert twice["reason"] == "alice has already approved `gate`; it needs 2 different people"
    team = say(service, server, 5, "/approve gate", "carol", "CONTRIBUTOR")  # in @octo/release
    assert (team["status"], team["reason"]) == ("done", f"approved `gate` of run {run_id}")

    state = finished(service, run_id)
    assert state.status is RunStatus.SUCCEEDED and "shipping 2 to staging" in lines(service, run_id)
    output = state.steps["gate"].output
    assert (output["approved"], output["approved_by"], output["approvers"]) == (
        True,
        "alice, carol",
        ["alice", "carol"],
    )
    assert [(d["by"], d["approved"]) for d in state.steps["gate"].approval["decisions"]] == [
        ("alice", True),
        ("carol", True),
    ]
    assert reactions(forge, 4) == ["confused", "+1", "confused", "+1"]
    assert replies(forge, 2, 5) == [f"@mallory {refused['reason']}", f"@alice {twice['reason']}"]
    summary(forge, 5, "✅ `deploy` › `gate` approved by alice, carol")
    asked = [r.path for r in forge.requests if r.method == "GET"]
    assert (
        "/orgs/octo/teams/release/memberships/carol" in asked
        and "/orgs/octo/teams/release/memberships/mallory" in asked
    )
    reaction_paths = {r.path for r in forge.requests if r.path.endswith("/reactions")}
    assert all(p.startswith("/repos/octo/app/issues/comments/") for p in reaction_paths) and len(reaction_paths) == 4

    shown = requests.get(
        f"{server.url}/api/runs/{run_id}", timeout=10, headers={"Authorization": "Bearer viewer-token-0123456789abcd"}
    ).json()
    gate = next(s for s in shown["steps"] if s["name"] == "gate")
    assert [(d["by"], d["approved"]) for d in gate["approval"]["decisions"]] == [("alice", True), ("carol", True)]
    assert all(d["at"].endswith("+00:00") for d in gate["approval"]["decisions"])


def test_reject_fails_the_gate_with_the_reason_and_an_unanswered_gate_times_out(live, upstream, forge):
    service, server = live
    _, runs = open_pr(
        service,
        server,
        upstream[0],
        6,
        """
        review: { type: pull_request, task: review }
        quick: { type: pull_request, task: quick }
        """,
    )
    by_task = {service.runs.load(r).task: r for r in runs}
    timed_out = finished(service, by_task["quick"])
    assert (timed_out.status, timed_out.steps["gate"].error) == (RunStatus.FAILED, "approval timed out after 1s")

    waiting(service, by_task["review"])
    rejected = say(service, server, 6, "/reject gate not like this", "bob")
    assert rejected["reason"] == f"rejected `gate` of run {by_task['review']}"
    state = finished(service, by_task["review"])
    assert state.status is RunStatus.FAILED
    assert state.steps["gate"].error == "rejected by bob: not like this"
    assert state.steps["gate"].output == {
        "approved": False,
        "rejected_by": "bob",
        "rejected_at": state.steps["gate"].approval["decisions"][0]["at"],
        "reason": "not like this",
    }
    assert state.steps["after"].status is StepStatus.SKIPPED
    summary(forge, 6, "❌ `review` › `gate` rejected by bob: not like this")
    summary(forge, 6, "❌ `quick` › `gate` failed: approval timed out after 1s")
    nothing = say(service, server, 6, "/approve", "bob")
    assert (nothing["status"], nothing["reason"]) == ("ignored", "nothing on #6 waits for approval")
    assert reactions(forge, 2) == ["+1", "confused"]


# ------------------------------------------------------------------ /run, /retry, /cancel, unknown commands


def test_run_retry_and_cancel_do_what_they_say_and_unknown_commands_get_the_list(live, upstream, forge):
    service, server = live
    head, [failed_id] = open_pr(service, server, upstream[0], 7, "tests: { type: pull_request, task: flaky }")
    assert finished(service, failed_id).status is RunStatus.FAILED

    outsider = say(service, server, 7, "/retry", "mallory", "CONTRIBUTOR")
    assert outsider["reason"] == "mallory may not run /retry: commands need write access to the repository"
    retried = say(service, server, 7, "/retry", "dev")
    [retry_id] = retried["runs"]
    assert retried["reason"] == f"retried flaky ({failed_id} -> {retry_id})"
    retry = finished(service, retry_id)
    assert (retry.retry_of, retry.commit, retry.status) == (failed_id, head, RunStatus.FAILED)

    started = say(service, server, 7, "/run deploy env=prod\n/run slow", "dev")
    deploy_id, slow_id = started["runs"]
    assert started["status"] == "done"
    deploy = waiting(service, deploy_id)
    assert (deploy.task, dict(deploy.inputs), deploy.commit) == ("deploy", {"env": "prod"}, head)
    assert deploy.steps["gate"].approval["message"] == f"deploy prod at {head[:7]}?"
    wait_for(lambda: service.runs.load(slow_id).steps["wait"].status is StepStatus.RUNNING, what="slow to start")
    assert {s.id for s in service.runs.list(RunFilter(workspace="app", pr=7)).runs} == {
        failed_id,
        retry_id,
        deploy_id,
        slow_id,
    }

    cancelled = say(service, server, 7, "/cancel", "dev")
    assert set(cancelled["runs"]) == {deploy_id, slow_id}
    for run_id in (deploy_id, slow_id):
        state = finished(service, run_id)
        assert state.status is RunStatus.CANCELLED and state.cancel_reason == "cancelled with /cancel on #7 by dev"

    bad = [say(service, server, 7, body, "dev") for body in ("/run deplyo", "/run deploy env", "/aprove")]
    assert bad[0]["reason"] == (
        f'there is no task `deplyo` at {head[:7]}; did you mean "deploy"? '
        "(tasks: ci, deploy, flaky, quick, review, slow)"
    )
    assert bad[1]["reason"] == "/run deploy: 'env' is not key=value; give inputs as key=value"
    assert bad[2]["reason"].startswith('`/aprove` is not a command here; did you mean "approve"?\n\nCommands:\n')
    assert "- `/retry`: run this pull request's failed runs again" in bad[2]["reason"]
    answers = replies(forge, 4, 7)
    assert answers[0] == f"@mallory {outsider['reason']}"
    assert answers[1:] == [f"@dev {b['reason']}" for b in bad]
    assert all(not line.startswith("/") for answer in answers for line in answer.splitlines()), (
        "Strom's replies never hold a command line"
    )
    assert reactions(forge, 7) == ["confused", "+1", "+1", "+1", "confused", "confused", "confused"]


def test_a_redelivered_command_acts_once(live, upstream, forge):
    service, server = live
    _, [failed_id] = open_pr(service, server, upstream[0], 8, "tests: { type: pull_request, task: flaky }")
    finished(service, failed_id)
    data = json.loads((FIXTURES / "github/issue_comment.created.pull_request.json").read_bytes())
    data["issue"] = {**data["issue"], "number": 8}
    data["comment"] = {
        **data["comment"],
        "body": "/retry",
        "author_association": "MEMBER",
        "id": 4242,
        "user": {**data["comment"]["user"], "login": "dev", "type": "User"},
    }
    data["repository"] = {**data["repository"], "full_name": REPO}
    first = processed(service, post_github(server, "github/issue_comment.created.pull_request.json", data))
    again = processed(service, post_github(server, "github/issue_comment.created.pull_request.json", data))
    assert first["id"] != again["id"] and first["runs"] == again["runs"] and len(first["runs"]) == 1
    assert len(service.runs.list(RunFilter(workspace="app", pr=8)).runs) == 2


# ------------------------------------------------------------------ comments that never act


def test_edited_bot_and_own_comments_never_act(live, upstream, forge):
    service, server = live
    _, [run_id] = open_pr(service, server, upstream[0], 9, "review: { type: pull_request, task: review }")
    waiting(service, run_id)
    edited = json.loads((FIXTURES / "github/issue_comment.edited.json").read_bytes())
    edited["issue"] = {**edited["issue"], "number": 9}
    edited["comment"] = {
        **edited["comment"],
        "body": "/approve",
        "author_association": "OWNER",
        "user": {**edited["comment"]["user"], "login": "bob"},
    }
    edited["repository"] = {**edited["repository"], "full_name": REPO}
    record = processed(service, post_github(server, "github/issue_comment.edited.json", edited))
    assert (record["status"], record["reason"]) == ("ignored", "comment edited (only new comments are read)")

    bot = json.loads((FIXTURES / "github/issue_comment.created.pull_request.json").read_bytes())
    bot["issue"] = {**bot["issue"], "number": 9}
    bot["comment"] = {
        **bot["comment"],
        "body": "/approve",
        "author_association": "MEMBER",
        "id": 777,
        "user": {**bot["comment"]["user"], "login": "helper[bot]", "type": "Bot"},
    }
    bot["repository"] = {**bot["repository"], "full_name": REPO}
    record = processed(service, post_github(server, "github/issue_comment.created.pull_request.json", bot))
    assert record["reason"] == "comment by bot 'helper[bot]'"
    own = say(service, server, 9, "@bob nothing to do\n/approve\n<!-- strom:reply -->", "bob")
    assert own["reason"] == "comment by bot 'bob'"
    assert service.runs.load(run_id).status is RunStatus.WAITING
    assert forge.reactions() == [] and forge.replies(9) == []


# ------------------------------------------------------------------ the workspace's rules


def test_new_pushes_cancel_waiting_gates_and_authors_may_not_approve_their_own(tmp_path, redis_url, upstream, forge):
    work, bare = upstream
    config = make_gitops_config(tmp_path, redis_url, bare, forge, approvals={"self_approval": False})
    with live_stack(config) as (service, server):
        head, [run_id] = open_pr(
            service, server, work, 10, "gated: { type: pull_request, task: deploy }", author="alice"
        )
        waiting(service, run_id)
        own = say(service, server, 10, "/approve", "alice", pr_author="alice")
        assert own["reason"] == (
            "alice wrote this change and may not approve its gate `gate` "
            "(the workspace sets approvals.self_approval: false)"
        )
        other = say(service, server, 10, "/approve", "bob", pr_author="alice")
        assert other["reason"] == f"approved `gate` of run {run_id} (1 of 2 approvals)"

        newer = commit(work, {"VERSION": "3\n"}, "more")
        git(work, "push", "-q", "-f", "origin", "topic-10:refs/pull/10/head")
        record = processed(service, pr_hook(server, 10, "synchronize", newer, "topic-10", "alice", "MEMBER", False))
        [new_id] = record["runs"]
        old = finished(service, run_id)
        assert old.status is RunStatus.CANCELLED
        assert old.cancel_reason == f"superseded: #10 moved to {newer[:7]} while waiting for approval"
        assert waiting(service, new_id).commit == newer

    config = make_gitops_config(tmp_path, redis_url, bare, forge, approvals={"cancel_on_push": False})
    with live_stack(config) as (service, server):
        git(work, "checkout", "-q", "main")
        head = push_pr_head(work, 11, "gated: { type: pull_request, task: deploy }", version="4")
        [first] = processed(service, pr_hook(server, 11, "opened", head, "topic-11", "dev", "MEMBER", False))["runs"]
        waiting(service, first)
        newer = commit(work, {"VERSION": "5\n"}, "more")
        git(work, "push", "-q", "-f", "origin", "topic-11:refs/pull/11/head")
        [second] = processed(service, pr_hook(server, 11, "synchronize", newer, "topic-11", "dev", "MEMBER", False))[
            "runs"
        ]
        waiting(service, second)
        assert service.runs.load(first).status is RunStatus.WAITING, "cancel_on_push: false keeps the old gate"
        for who in ("alice", "bob"):
            decided = say(service, server, 11, "/approve", who)
            assert decided["runs"] == [second], "only the head's gate: nobody approves code they did not see"
        assert finished(service, second).status is RunStatus.SUCCEEDED
        assert service.runs.load(first).status is RunStatus.WAITING
        old_only = say(service, server, 11, "/approve", "carol", "CONTRIBUTOR")
        assert old_only["reason"] == (
            f"the gates waiting on #11 belong to older commits than its head {newer[:7]}; "
            f"approve the runs of {newer[:7]}"
        )


# ------------------------------------------------------------------ GitLab and Gitea


def gitlab_note(server, iid: int, head: str, body: str, author: str):
    data = json.loads((FIXTURES / "gitlab/note.merge_request.json").read_bytes())
    data["project"] = {**data["project"], "path_with_namespace": REPO}
    data["user"] = {**data["user"], "username": author}
    data["object_attributes"] = {**data["object_attributes"], "note": body, "id": uuid.uuid4().int % 10**6}
    data["merge_request"] = {
        **data["merge_request"],
        "iid": iid,
        "source_branch": "topic-4",
        "target_branch": "main",
        "last_commit": {**data["merge_request"]["last_commit"], "id": head},
    }
    return post_to(server, "gitlab", "gitlab/note.merge_request.json", data)


def gitea_comment(server, number: int, body: str, author: str):
    data = json.loads((FIXTURES / "gitea/issue_comment.created.pull_request.json").read_bytes())
    data["issue"] = {**data["issue"], "number": number}
    data["comment"] = {
        **data["comment"],
        "body": body,
        "id": uuid.uuid4().int % 10**6,
        "user": {**data["comment"]["user"], "login": author},
    }
    data["sender"] = {**data["sender"], "login": author}
    data["repository"] = {**data["repository"], "full_name": REPO}
    return post_to(server, "gitea", "gitea/issue_comment.created.pull_request.json", data)


@pytest.mark.parametrize("kind", ["gitlab", "gitea"])
def test_gitlab_notes_and_gitea_comments_approve_with_access_asked_of_the_forge(tmp_path, redis_url, upstream, kind):
    work, bare = upstream
    ref = "refs/merge-requests/4/head" if kind == "gitlab" else "refs/pull/4/head"
    commit(work, {"VERSION": "1\n", ".strom/ci.yaml": pipeline("review: { type: pull_request, task: review }")}, "base")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "topic-4")
    head = commit(work, {"VERSION": "2\n"}, "topic")
    git(work, "push", "-q", "origin", f"topic-4:{ref}")
    with FakeForge(kind, writers={"example2": True, "maintainer": True, "reader": False}, users=["reader"]) as forge:
        config = make_gitops_config(tmp_path, redis_url, bare, forge)
        config = replace(config, workspaces={"app": replace(config.workspaces["app"], forge=kind)})
        with stack(config) as service, serving(config, service) as server:
            send_pr = gitlab_merge_request if kind == "gitlab" else gitea_pull_request
            [run_id] = processed(service, send_pr(server, 4, head, "topic-4"))["runs"]
            waiting(service, run_id)

            def comment(body, author):
                if kind == "gitlab":
                    return processed(service, gitlab_note(server, 4, head, body, author))
                return processed(service, gitea_comment(server, 4, body, author))

            refused = comment("/approve", "reader")
            assert refused["reason"] == "reader may not decide `gate`: that needs write access to the repository"
            approved = comment("/approve", "maintainer")
            assert approved["reason"] == f"approved `gate` of run {run_id}"
            assert finished(service, run_id).status is RunStatus.SUCCEEDED
            assert "reviewed" in lines(service, run_id)
            wait_for(lambda: len(forge.reactions()) == 2 and forge.replies(4), what="the answers")
            good, bad = ("thumbsup", "confused") if kind == "gitlab" else ("+1", "confused")
            assert [r["content"] for r in forge.reactions()] == [bad, good]
            assert forge.replies(4)[0].startswith(f"@reader {refused['reason']}")
        if kind == "gitlab":
            assert any(r.path.endswith("/award_emoji") and "/merge_requests/4/notes/" in r.path for r in forge.requests)
            asked = [r.path for r in forge.requests if "/members/all/" in r.path]
        else:
            assert any(
                r.path.startswith("/api/v1/repos/octo/app/issues/comments/") and r.path.endswith("/reactions")
                for r in forge.requests
            )
            asked = [r.path for r in forge.requests if r.path.endswith("/permission")]
        assert len(asked) >= 2, "access is asked of the forge when the payload does not say"


def test_an_agent_steps_question_is_answered_by_a_comment_even_from_the_author(tmp_path, redis_url, upstream, forge):
    from fake_llm import FakeLLM, openai_text, openai_tools

    llm = FakeLLM()
    providers = [{"id": "gpt", "type": "openai", "api_key": "sk-t", "api_endpoint": f"{llm.url}/v1", "model": "m"}]
    env = {"STROM_AGENTS": json.dumps({"providers": providers})}
    config = make_gitops_config(tmp_path, redis_url, upstream[1], forge, env=env, approvals={"self_approval": False})
    llm.script(
        "/v1/chat/completions", openai_tools(("q1", "ask_user", {"question": "Which region?"})), openai_text("ok")
    )
    tasks = """
    tasks:
      triage:
        flow:
          ask: { type: agent, provider: gpt, prompt: Plan the rollout, interactive: true }
    triggers:
      triage: { type: pull_request, task: triage }
    """
    work = upstream[0]
    try:
        with live_stack(config, abilities=("script", "agent")) as (service, server):
            commit(work, {"VERSION": "1\n", ".strom/ci.yaml": tasks}, "base")
            git(work, "push", "-q", "origin", "main")
            git(work, "checkout", "-q", "-b", "topic-12")
            head = commit(work, {"VERSION": "2\n"}, "change 12")
            git(work, "push", "-q", "origin", "topic-12:refs/pull/12/head")
            record = processed(service, pr_hook(server, 12, "opened", head, "topic-12", "dev", "MEMBER", False))
            [run_id] = record["runs"]
            waiting(service, run_id)
            summary(forge, 12, "❓ `triage` › `ask` asks: Which region? Comment `/answer ask <your answer>`")
            nothing = say(service, server, 12, "/approve", "bob")
            assert nothing["reason"] == "nothing on #12 waits for approval", "a question is answered, not approved"
            refused = say(service, server, 12, "/answer eu-west", "mallory", "CONTRIBUTOR")
            assert refused["status"] == "ignored" and "needs write access" in refused["reason"]
            answered = say(service, server, 12, '/answer ask "eu-west", near the users', "dev")
            assert answered["reason"] == f"answered `ask` of run {run_id}", "the change's author may answer"
            state = finished(service, run_id)
            assert state.status is RunStatus.SUCCEEDED, state.steps["ask"].error
            [qa] = state.steps["ask"].answers
            assert (qa["answer"], qa["by"]) == ('"eu-west", near the users', "dev")
            second = llm.bodies("/v1/chat/completions")[1]
            assert json.loads(second["messages"][-1]["content"]) == {"answer": '"eu-west", near the users'}
    finally:
        llm.close()
