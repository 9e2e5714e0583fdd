"""A `git:` workspace end to end: signed GitHub webhooks (shaped like the fixtures) for commits of a
real repository, runs pinned to those commits, trust for pull requests, polling, job triggers,
concurrency, and the statuses and comments the recording fake GitHub receives."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import requests
from fake_forge import FakeForge
from forge_fixtures import FIXTURES, ZERO, case_named, forge_headers
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
    pr_hook,
    processed,
    push_hook,
    runs_of,
    statuses,
)
from service_env import TOKENS, live_stack, serving, stack, wait_for

from runner.engine import Cancel, RunStatus
from runner.runs.service import Service
from runner.service.worker import Worker

PIPELINE = """
    tasks:
      ci:
        flow:
          check:
            type: script
            script: |
              echo "version=$(cat VERSION)"
              echo "token={{ secret.deploy_key | default('withheld') }}"
      release:
        flow:
          gate: { type: approval, message: "release {{ git.short_sha }}?" }
          ship: { type: script, script: 'echo "shipping $(cat VERSION)"', depends_on: [gate] }
      deploy:
        flow:
          go: { type: script, script: 'echo "deploy after {{ event.job.task }} {{ event.job.status }} at $STROM_SHA"' }
      slow:
        flow:
          wait: { type: script, script: "sleep 60" }
    triggers:
      pushes: { type: push, task: ci, branches: [main], paths: ["**", "!docs/**"] }
      releases: { type: tag, task: release, tags: ["v*"] }
      prs: { type: pull_request, task: ci }
      after-ci: { type: job, task: deploy, after: [ci], branches: [main] }
      busy: { type: push, task: slow, branches: [busy], concurrency: cancel_previous }
      retest: { type: comment, task: ci, command: retest }
    """


@pytest.fixture
def forge():
    with FakeForge("github", writers={"maintainer": "write", "mallory": "read"}) as fake:
        yield fake


@pytest.fixture
def live(tmp_path, redis_url, upstream, forge):
    config = make_gitops_config(tmp_path, redis_url, upstream[1], forge)
    with live_stack(config) as pair:
        yield pair


# ------------------------------------------------------------------ tests


def test_a_push_runs_on_its_own_commit_and_reports_pending_then_success(live, upstream, forge):
    service, server = live
    work, _ = upstream
    first = commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "first")
    git(work, "push", "-q", "origin", "main")
    second = commit(work, {"VERSION": "2\n"}, "second")
    git(work, "push", "-q", "origin", "main")
    record = processed(service, push_hook(server, work, "refs/heads/main", first, second))
    older = processed(service, push_hook(server, work, "refs/heads/main", ZERO, first))
    runs = {
        service.runs.load(record["runs"][0]).commit: record["runs"][0],
        service.runs.load(older["runs"][0]).commit: older["runs"][0],
    }
    assert set(runs) == {first, second}
    for sha, version in ((first, "1"), (second, "2")):
        state = finished(service, runs[sha])
        assert state.status is RunStatus.SUCCEEDED, state.error
        assert f"version={version}" in lines(service, runs[sha])
        assert "token=***" in lines(service, runs[sha])
        assert state.snapshot.endswith(f"/snapshots/{sha}") and state.git["sha"] == sha
    deploys = wait_for(
        lambda: len(done := [s for s in runs_of(service, "deploy") if s.status.terminal]) == 2 and done,
        what="two deploy runs",
    )
    for deploy in deploys:
        assert deploy.event["kind"] == "job" and deploy.event["job"]["task"] == "ci"
        assert f"deploy after ci succeeded at {deploy.commit}" in lines(service, deploy.id)
    reported = statuses(forge, 8)
    for sha in (first, second):
        mine = [(c, state) for c, state, _, s in reported if s == sha]
        assert mine.count(("strom/ci", "success")) == 1 and mine.count(("strom/deploy", "success")) == 1
        assert mine.index(("strom/ci", "success")) < mine.index(("strom/deploy", "success"))
    request = next(r for r in forge.requests if r.json and r.json.get("context") == "strom/ci")
    assert request.headers["authorization"] == "Bearer ghp_test_token"
    assert request.json["target_url"] == f"https://strom.example.com/runs/{runs[request.path.rsplit('/', 1)[1]]}"


def test_a_tag_run_reports_waiting_for_approval_then_its_final_status(live, upstream, forge):
    service, server = live
    work, _ = upstream
    sha = commit(work, {"VERSION": "3\n", ".strom/ci.yaml": PIPELINE}, "release me")
    git(work, "tag", "v3", sha)
    git(work, "push", "-q", "origin", "main", "v3")
    record = processed(service, tag_hook(server, "v3", sha))
    [run_id] = record["runs"]
    assert statuses(forge, 1) == [("strom/release", "pending", "waiting for approval", sha)]
    wait_for(lambda: service.runs.load(run_id).status is RunStatus.WAITING, what="the approval")
    approve(server, run_id, "gate")
    assert finished(service, run_id).status is RunStatus.SUCCEEDED
    wait_for(lambda: forge.statuses()[-1]["state"] == "success", what="the final status")
    final = statuses(forge, 2)
    assert final[-1][:2] == ("strom/release", "success") and final[-1][2].startswith("succeeded in ")
    # the approval moves the run on: "running" is reported unless the run finished before the reporter got to it
    assert final[1:-1] in ([], [("strom/release", "pending", "running", sha)])
    assert "shipping 3" in lines(service, run_id)


def test_a_fork_pull_request_waits_for_ok_to_test_and_runs_without_secrets(live, upstream, forge):
    service, server = live
    work, _bare = upstream
    base = commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "base")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "feature")
    head_sha = commit(work, {"VERSION": "fork\n"}, "from a fork")
    git(work, "push", "-q", "origin", "feature:refs/pull/7/head")

    waiting = processed(service, pr_hook(server, 7, "opened", head_sha, "feature", "mallory", "CONTRIBUTOR", True))
    assert waiting["status"] == "waiting" and waiting["runs"] == []
    assert waiting["reason"] == (
        "pull request #7 by mallory comes from a fork or an author without write access: "
        f"a maintainer must comment /ok-to-test to run commit {head_sha[:7]}"
    )
    created = forge.wait_for_requests(1)[0]
    assert (created.method, created.path) == ("POST", "/repos/octo/app/issues/7/comments")
    assert "⏸ pull request #7 by mallory" in created.json["body"]

    ignored = processed(service, comment_hook(server, 7, "/ok-to-test", "mallory", "CONTRIBUTOR"))
    assert ignored["status"] == "ignored"
    assert ignored["reason"] == "mallory may not run /ok-to-test: commands need write access to the repository"

    early = processed(service, comment_hook(server, 7, "/retest", "maintainer", "MEMBER"))
    assert (early["status"], early["reason"]) == (
        "ignored",
        f"pull request #7 is untrusted: comment /ok-to-test on its head {head_sha[:7]} before /retest",
    )
    unknown = processed(service, comment_hook(server, 7, "/fork-only", "maintainer", "MEMBER"))
    assert (
        unknown["reason"] == f"pull request #7 is untrusted: comment /ok-to-test on its head {head_sha[:7]} "
        "before /fork-only"
    ), "refused before the fork's definitions are even read"
    stale = processed(service, comment_hook(server, 7, "/ok-to-test 0123abcd", "maintainer", "MEMBER"))
    assert stale["reason"] == (
        f"the head of #7 is {head_sha[:7]}, not 0123abcd: look at it and comment /ok-to-test {head_sha[:7]}"
    )
    approved = processed(service, comment_hook(server, 7, f"/ok-to-test {head_sha[:10]}", "maintainer", "MEMBER"))
    assert (
        approved["status"] == "done"
        and approved["reason"] == f"maintainer trusted commit {head_sha[:7]} of #7: event {waiting['id']} runs now"
    )
    rerun = processed(service, waiting["id"], status="done")
    [run_id] = rerun["runs"]
    state = finished(service, run_id)
    assert (state.status, state.commit, state.trusted) == (RunStatus.SUCCEEDED, head_sha, False)
    assert "version=fork" in lines(service, run_id) and "token=withheld" in lines(service, run_id)
    assert not runs_of(service, "deploy"), "job triggers follow main only"
    wait_for(
        lambda: any(
            r.method == "PATCH" and "`ci`" in (r.json or {}).get("body", "") and "succeeded" in r.json["body"]
            for r in forge.requests
        ),
        what="the summary comment edited",
    )
    [summary] = [c for c in forge.comments() if "strom:summary" in c["body"]]
    assert summary["number"] == 7 and "⏸" not in summary["body"]
    assert (
        f"| `ci` | ✅ succeeded | `{head_sha[:7]}` | [{run_id}](https://strom.example.com/runs/{run_id}) |"
        in summary["body"]
    )
    summary_posts = [
        r
        for r in forge.requests
        if r.path == "/repos/octo/app/issues/7/comments" and r.method == "POST" and "strom:summary" in r.json["body"]
    ]
    assert len(summary_posts) == 1, "one summary comment per pull request, edited afterwards"
    # every refusal was answered in the pull request, and every command got a reaction
    assert forge.replies(7) == [
        f"@{who} {why}\n<!-- strom:reply -->"
        for who, why in [
            ("mallory", ignored["reason"]),
            ("maintainer", early["reason"]),
            ("maintainer", unknown["reason"]),
            ("maintainer", stale["reason"]),
        ]
    ]
    assert [r["content"] for r in forge.reactions()] == ["confused", "confused", "confused", "confused", "+1"]

    newer = commit(work, {"VERSION": "fork 2\n"}, "more from the fork")
    git(work, "push", "-q", "-f", "origin", "feature:refs/pull/7/head")
    again = processed(service, pr_hook(server, 7, "synchronize", newer, "feature", "mallory", "CONTRIBUTOR", True))
    assert again["status"] == "waiting", "trust is per commit unless the workspace makes it sticky"
    assert base != head_sha


def test_a_maintainers_pull_request_runs_at_once_with_the_files_it_changes(live, upstream, forge):
    service, server = live
    work, _ = upstream
    commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "base")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "topic")
    head_sha = commit(work, {"docs/guide.md": "words\n", "VERSION": "2\n"}, "topic")
    git(work, "push", "-q", "origin", "topic:refs/pull/8/head")
    record = processed(service, pr_hook(server, 8, "opened", head_sha, "topic", "maintainer", "MEMBER", False))
    [run_id] = record["runs"]
    state = finished(service, run_id)
    assert (state.trusted, state.event["changed_files"]) == (True, ["VERSION", "docs/guide.md"])
    assert "token=***" in lines(service, run_id)


def test_paths_exclusions_and_skip_markers_leave_a_push_ignored_with_the_reason(live, upstream, forge):
    service, server = live
    work, _ = upstream
    base = commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "base [skip ci]")
    docs = commit(work, {"docs/readme.md": "only docs\n"}, "docs only")
    git(work, "push", "-q", "origin", "main")
    skipped = processed(service, push_hook(server, work, "refs/heads/main", ZERO, base))
    assert (skipped["status"], skipped["reason"]) == ("ignored", "the commit message asks to skip CI ([skip ci])")
    only_docs = processed(service, push_hook(server, work, "refs/heads/main", base, docs))
    assert only_docs["status"] == "ignored"
    assert only_docs["reason"] == (
        "trigger 'pushes': no changed file matches paths [**, !docs/**] "
        "(changed: docs/readme.md); trigger 'busy': branch 'main' is not in [busy]"
    )
    assert forge.requests == []


def test_an_invalid_strom_at_the_pushed_commit_fails_the_event_and_the_commit_status(live, upstream, forge):
    service, server = live
    work, _ = upstream
    sha = commit(work, {".strom/ci.yaml": "tasks:\n  ci:\n    flow:\n      a: { type: scirpt }\n"}, "broken")
    git(work, "push", "-q", "origin", "main")
    record = processed(service, push_hook(server, work, "refs/heads/main", ZERO, sha))
    assert record["status"] == "failed" and record["error"].startswith(
        f"invalid .strom/ at {sha[:12]}: .strom/ci.yaml:4:"
    )
    [(context, state, description, at)] = statuses(forge, 1)
    assert (context, state, at) == ("strom/definitions", "failure", sha)
    assert description.startswith("invalid .strom/: .strom/ci.yaml:4:")


def test_a_missed_webhook_is_made_up_by_polling_once(tmp_path, redis_url, upstream, forge):
    work, bare = upstream
    config = make_gitops_config(tmp_path, redis_url, bare, forge, poll="0.2s")
    commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "before polling started")
    git(work, "push", "-q", "origin", "main")
    with stack(config) as service:
        wait_for(lambda: service.redis.exists("strom:heads:app:polled"), what="the first poll")
        assert service.repo_events.list() == [], "the first poll only records the heads"
        sha = commit(work, {"VERSION": "polled\n"}, "no webhook for this one")
        git(work, "push", "-q", "origin", "main")
        [event] = wait_for(lambda: service.repo_events.list() or None, what="the poll to notice the push")
        assert (event["event"]["source"], event["event"]["sha"], event["event"]["branch"]) == ("poll", sha, "main")
        record = processed(service, event["id"])
        [run_id] = record["runs"]
        assert finished(service, run_id).commit == sha
        with serving(config, service) as server:
            late = processed(service, push_hook(server, work, "refs/heads/main", ZERO, sha))
        assert late["runs"] == [run_id] and late["reason"] == f"trigger 'pushes': run {run_id} already exists"
        assert len(runs_of(service, "ci")) == 1


def test_a_newer_push_cancels_the_previous_run_of_its_concurrency_group(live, upstream, forge):
    service, server = live
    work, _ = upstream
    git(work, "checkout", "-q", "-b", "busy")
    first = commit(work, {".strom/ci.yaml": PIPELINE}, "one")
    second = commit(work, {"VERSION": "2\n"}, "two")
    git(work, "push", "-q", "origin", "busy")
    [old] = processed(service, push_hook(server, work, "refs/heads/busy", ZERO, first))["runs"]
    wait_for(lambda: service.runs.load(old).status is RunStatus.RUNNING, what="the first run to start")
    new_event = push_hook(server, work, "refs/heads/busy", first, second)
    [new] = processed(service, new_event)["runs"]
    cancelled = finished(service, old)
    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.cancel_reason == f"superseded by a newer event ({new_event})"
    assert service.runs.load(new).group == "busy:busy"
    service.orchestrator.try_apply(new, Cancel("test over"))
    wait_for(
        lambda: any(s["sha"] == first and s["state"] == "error" for s in forge.statuses()),
        what="the cancelled run's status",
    )
    [final] = [s for s in forge.statuses() if s["sha"] == first and s["state"] == "error"]
    assert final["context"] == "strom/slow" and final["target_url"] == f"https://strom.example.com/runs/{old}"
    assert final["description"].startswith("cancelled in ")
    assert final["description"].endswith(f"s: superseded by a newer event ({new_event})")


def test_a_worker_without_the_servers_disk_downloads_the_snapshot(tmp_path, redis_url, upstream, forge):
    work, bare = upstream
    config = make_gitops_config(tmp_path, redis_url, bare, forge)
    sha = commit(work, {"VERSION": "remote\n", ".strom/ci.yaml": PIPELINE}, "for a remote worker")
    git(work, "push", "-q", "origin", "main")
    with stack(config, workers=0) as service:
        with serving(config, service) as server:
            record = processed(service, push_hook(server, work, "refs/heads/main", ZERO, sha))
            [run_id] = record["runs"]
            snapshot = Path(service.runs.load(run_id).snapshot)
            shutil.move(str(snapshot), str(tmp_path / "elsewhere"))  # as if on another machine
            remote_config = make_gitops_config(tmp_path / "remote", redis_url, bare, forge)
            remote_config = replace(remote_config, public_url=server.url, worker_token=TOKENS["viewer"])
            worker = Worker(Service(remote_config), name="remote-worker")
            worker.start()
            try:
                state = finished(service, run_id)
            finally:
                worker.stop(2)
            assert state.status is RunStatus.SUCCEEDED, state.error
            assert "version=remote" in lines(service, run_id)
            downloaded = tmp_path / "remote" / "data" / "snapshots" / sha
            assert (downloaded / "VERSION").read_text() == "remote\n"
            url = f"{server.url}/api/workspaces/app/snapshots/{sha}.tar.gz"
            assert requests.get(url, timeout=10).status_code == 401
            auth = {"Authorization": f"Bearer {TOKENS['viewer']}"}
            archive = requests.get(url, headers=auth, timeout=10)
            assert archive.status_code == 200 and archive.headers["ETag"] == f'"{sha}"'
            again = requests.get(url, headers={**auth, "If-None-Match": f'"{sha}"'}, timeout=10)
            assert again.status_code == 304
            missing = requests.get(url.replace(sha, "f" * 40), headers=auth, timeout=10)
            assert missing.status_code == 404


def tag_hook(server, tag: str, sha: str):
    data = json.loads((FIXTURES / "github/push.tag-create.json").read_bytes())
    data.update(ref=f"refs/tags/{tag}", before=ZERO, after=sha)
    data["repository"] = {**data["repository"], "full_name": REPO}
    return post_github(server, "github/push.tag-create.json", data)


def approve(server, run_id, step):
    answer = requests.post(
        f"{server.url}/api/runs/{run_id}/steps/{step}/approve",
        json={},
        headers={"Authorization": f"Bearer {TOKENS['approver']}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text


def test_forge_errors_are_retried_and_never_touch_the_run(live, upstream, forge):
    service, server = live
    work, _ = upstream
    sha = commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "flaky forge")
    git(work, "tag", "v1", sha)
    git(work, "push", "-q", "origin", "main", "v1")
    forge.fail_next("/repos/octo/app/statuses", 502)
    forge.fail_next(lambda r: (r.json or {}).get("state") == "success", 422)
    [run_id] = processed(service, tag_hook(server, "v1", sha))["runs"]
    forge.wait_for_requests(2)
    approve(server, run_id, "gate")
    assert finished(service, run_id).status is RunStatus.SUCCEEDED
    wait_for(lambda: service.redis.hget("strom:metrics:counters", "reports_failed") == "1", what="the failed report")
    running = ("pending", "running")  # reported after the approval unless the run finished first
    posts = [(r.json["state"], r.json["description"]) for r in forge.requests]
    posts = [p for p in posts if p != running]
    assert posts[:2] == [("pending", "waiting for approval")] * 2, "a 502 is retried with the same body"
    assert len(posts) == 3 and posts[2][0] == "success", "a 422 is not retried"
    assert [s for s in forge.statuses() if s["description"] != "running"] == [
        {
            "sha": sha,
            "state": "pending",
            "description": "waiting for approval",
            "context": "strom/release",
            "target_url": f"https://strom.example.com/runs/{run_id}",
        }
    ]
    assert service.runs.load(run_id).status is RunStatus.SUCCEEDED


def test_a_rerun_after_the_snapshot_was_collected_writes_it_again(live, upstream, forge):
    service, server = live
    work, _ = upstream
    sha = commit(work, {"VERSION": "again\n", ".strom/ci.yaml": PIPELINE}, "rerun me")
    git(work, "push", "-q", "origin", "main")
    [run_id] = processed(service, push_hook(server, work, "refs/heads/main", ZERO, sha))["runs"]
    first = finished(service, run_id)
    settled = wait_for(
        lambda: all(s.status.terminal for s in runs_of(service, "deploy")) and runs_of(service, "deploy"),
        what="the deploy run",
    )
    assert settled
    assert service.repos.snapshots.collect(set(), older_than=-1) == [sha]
    assert not Path(first.snapshot).exists()
    answer = requests.post(
        f"{server.url}/api/runs/{run_id}/rerun", headers={"Authorization": f"Bearer {TOKENS['operator']}"}, timeout=10
    )
    assert answer.status_code == 201, answer.text
    again = finished(service, answer.json()["id"])
    assert again.status is RunStatus.SUCCEEDED and again.snapshot == first.snapshot
    assert "version=again" in lines(service, again.id)


@pytest.mark.parametrize("kind", ["gitlab", "gitea"])
def test_gitlab_and_gitea_get_commit_statuses_and_one_edited_summary_comment(tmp_path, redis_url, upstream, kind):
    work, bare = upstream
    commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "base")
    git(work, "push", "-q", "origin", "main")
    git(work, "checkout", "-q", "-b", "topic")
    head_sha = commit(work, {"VERSION": "2\n"}, "topic")
    pr_ref = "refs/merge-requests/4/head" if kind == "gitlab" else "refs/pull/4/head"
    git(work, "push", "-q", "origin", f"topic:{pr_ref}")
    with FakeForge(kind, writers={"example2": "write"}) as forge:  # Gitea asks whether the author may write
        config = make_gitops_config(tmp_path, redis_url, bare, forge)
        config = replace(config, workspaces={"app": replace(config.workspaces["app"], forge=kind)})
        with stack(config) as service:
            with serving(config, service) as server:
                send = gitlab_merge_request if kind == "gitlab" else gitea_pull_request
                [run_id] = processed(service, send(server, 4, head_sha, "topic"))["runs"]
                assert finished(service, run_id).status is RunStatus.SUCCEEDED
                wait_for(
                    lambda: any(s["sha"] == head_sha and s["state"] == "success" for s in forge.statuses()),
                    what="the final status",
                )
                wait_for(lambda: any("succeeded" in c["body"] for c in forge.comments()), what="the summary")
        project = "/projects/octo%2Fapp" if kind == "gitlab" else "/repos/octo/app"
        status_path = f"{forge.url}{project}/statuses/{head_sha}".replace(forge.root, "")
        statuses = [r for r in forge.requests if r.path == status_path]
        final = statuses[-1].json
        if kind == "gitlab":
            assert statuses[-1].headers["private-token"] == "ghp_test_token"
            assert {k: final[k] for k in ("state", "name", "target_url")} == {
                "state": "success",
                "name": "strom/ci",
                "target_url": f"https://strom.example.com/runs/{run_id}",
            }
            notes = f"{project}/merge_requests/4/notes"
        else:
            assert statuses[-1].headers["authorization"] == "token ghp_test_token"
            assert {k: final[k] for k in ("state", "context", "target_url")} == {
                "state": "success",
                "context": "strom/ci",
                "target_url": f"https://strom.example.com/runs/{run_id}",
            }
            notes = f"{project}/issues/4/comments"
        assert all(r.json["state"] == "pending" for r in statuses[:-1])
        comment_requests = [r for r in forge.requests if "notes" in r.path or "comments" in r.path]
        assert comment_requests[0].method == "POST" and comment_requests[0].path.endswith(notes)
        edit = "PUT" if kind == "gitlab" else "PATCH"
        assert {r.method for r in comment_requests[1:]} <= {edit}
        [summary] = forge.comments()
        assert (
            f"| `ci` | ✅ succeeded | `{head_sha[:7]}` | [{run_id}](https://strom.example.com/runs/{run_id}) |"
            in summary["body"]
        )


def test_a_payload_whose_commit_names_are_not_shas_never_reaches_git(live, upstream, forge, tmp_path):
    service, server = live
    work, _ = upstream
    commit(work, {".strom/ci.yaml": PIPELINE}, "base")
    git(work, "push", "-q", "origin", "main")
    target = tmp_path / "written-by-git"
    data = json.loads((FIXTURES / "github/push.branch.json").read_bytes())
    data.update(ref="refs/heads/main", before=f"--output={target}", after="../../../etc")
    data["repository"] = {**data["repository"], "full_name": REPO}
    body = json.dumps(data).encode()
    case = case_named("github/push.branch.json")
    answer = requests.post(f"{server.url}/webhooks/github", data=body, headers=forge_headers(case, body), timeout=30)
    assert (answer.status_code, answer.json()["error"]["message"]) == (
        400,
        "the payload's commit sha (after) is not a commit id (hexadecimal)",
    )
    assert service.repo_events.list() == [] and not target.exists()


def test_a_run_started_from_the_api_fetches_the_default_branchs_head(tmp_path, redis_url, upstream, forge):
    work, bare = upstream
    sha = commit(work, {"VERSION": "from the api\n", ".strom/ci.yaml": PIPELINE}, "api")
    git(work, "push", "-q", "origin", "main")
    config = make_gitops_config(tmp_path, redis_url, bare, forge)
    with stack(config) as service:
        with serving(config, service) as server:
            answer = requests.post(
                f"{server.url}/api/workspaces/app/tasks/ci/execute",
                json={"input": {}},
                headers={"Authorization": f"Bearer {TOKENS['operator']}"},
                timeout=30,
            )
        assert answer.status_code == 201, answer.text
        state = finished(service, answer.json()["id"])
        assert (state.status, state.commit, state.git["branch"]) == (RunStatus.SUCCEEDED, sha, "main")
        assert "version=from the api" in lines(service, state.id)
    assert forge.requests == [], "runs started from the API report nothing to the forge"
