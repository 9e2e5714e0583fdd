"""The overview (the landing page): each workspace's branches and open pull requests with the latest status of
every task, from real signed webhooks; rows leave when their branch is deleted or their pull request closes; the
live stream of run changes it follows resumes after its last id."""

from __future__ import annotations

import json
import re
import signal
import threading

import pytest
import requests
from fake_forge import FakeForge
from forge_fixtures import FIXTURES, ZERO
from git_env import commit, git
from gitops_env import REPO, finished, make_gitops_config, post_github, pr_hook, processed, push_hook
from service_env import TOKENS, RedisServer, live_stack, make_config, signed_in, wait_for

from runner import runs as run_service
from runner.engine import Cancel
from runner.store import RunFilter, keys

PIPELINE = """
    tasks:
      ci: { flow: { check: { type: script, script: "echo ok" } } }
      lint: { flow: { look: { type: script, script: "test -f VERSION" } } }
      nested: { flow: { child: { type: task, task: ci } } }
    triggers:
      pushes: { type: push, task: ci, branches: [main, busy] }
      lints: { type: push, task: lint, branches: [busy] }
      nest: { type: push, task: nested, branches: [busy] }
      prs: { type: pull_request, task: ci }
    """


@pytest.fixture
def live(tmp_path, redis_url, upstream):
    with FakeForge("github", writers={"maintainer": "write"}) as forge:
        config = make_gitops_config(tmp_path, redis_url, upstream[1], forge, public_url="http://strom.test")
        with live_stack(config) as pair:
            yield pair


def grid(browser, server) -> dict[str, dict[str, str]]:
    """row -> task -> the status its cell shows ("-" for none), as the page draws it."""
    html = browser.get(f"{server.url}/?fragment=1", timeout=10).text
    rows = {}
    for key, body in re.findall(r'<tr data-row="([^"]+)">(.*?)</tr>', html, re.S):
        cells = re.findall(r'<td data-task="([^"]+)">\s*(?:<a class="status (\w+)"|<span class="muted">–)', body)
        rows[key] = {task: status or "-" for task, status in cells}
    return rows


def settled(service, event_id):
    for run_id in processed(service, event_id)["runs"]:
        finished(service, run_id)


def test_the_overview_shows_branches_and_open_pull_requests_with_each_tasks_latest_status(live, upstream):
    service, server = live
    work, _ = upstream
    browser = signed_in(server, "viewer")
    empty = browser.get(f"{server.url}/", timeout=10)
    assert empty.status_code == 200 and 'data-row="branch:main"' in empty.text, "the default branch, before any run"
    assert "No runs yet" not in empty.text

    base = commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "base")
    git(work, "push", "-q", "origin", "main")
    settled(service, push_hook(server, work, "refs/heads/main", ZERO, base))
    git(work, "checkout", "-q", "-b", "busy")
    busy = commit(work, {"VERSION": None}, "no version")
    git(work, "push", "-q", "origin", "busy")
    settled(service, push_hook(server, work, "refs/heads/busy", base, busy))
    head = commit(work, {"VERSION": "2\n"}, "topic")
    git(work, "push", "-q", "origin", f"{head}:refs/pull/8/head")
    settled(service, pr_hook(server, 8, "opened", head, "topic", "maintainer", "MEMBER", False))

    rows = grid(browser, server)
    assert list(rows) == ["branch:main", "branch:busy", "pr:8"], "default branch, other branches, pull requests"
    assert rows["branch:main"] == {"ci": "succeeded", "lint": "-", "nested": "-"}
    assert rows["branch:busy"] == {"ci": "succeeded", "lint": "failed", "nested": "succeeded"}, (
        "the child run of `nested` is not the latest `ci` of busy: the push's own run is"
    )
    assert rows["pr:8"] == {"ci": "succeeded", "lint": "-", "nested": "-"}
    page = browser.get(f"{server.url}/", timeout=10).text
    assert re.search(r'href="/pulls/app/8">#8</a>\s*<span class="muted">Change #8</span>', page)
    assert 'href="/trends/app/lint"' in page

    again = commit(work, {"VERSION": "3\n"}, "busy again")
    git(work, "push", "-q", "origin", "busy")
    settled(service, push_hook(server, work, "refs/heads/busy", busy, again))
    assert grid(browser, server)["branch:busy"]["lint"] == "succeeded", "the newest run of the row shows"

    deletion = json.loads((FIXTURES / "github/push.branch.json").read_bytes())
    deletion.update(ref="refs/heads/busy", before=again, after=ZERO, created=False, deleted=True, head_commit=None)
    deletion["repository"] = {**deletion["repository"], "full_name": REPO}
    processed(service, post_github(server, "github/push.branch.json", deletion))
    processed(service, pr_hook(server, 8, "closed", head, "topic", "maintainer", "MEMBER", False))
    assert list(grid(browser, server)) == ["branch:main"], "a deleted branch and a closed pull request leave"
    assert service.redis.hlen(keys.latest_runs("app")) == 1

    [main_run] = [s for s in service.runs.list(RunFilter(workspace="app")).runs if s.commit == base]
    service.runs.delete([main_run])
    assert grid(browser, server) == {"branch:main": {}}, "a run retention deleted leaves an empty row"
    assert service.redis.hlen(keys.latest_runs("app")) == 0


def test_the_stream_of_run_changes_resumes_after_its_last_id(live, upstream):
    service, server = live
    work, _ = upstream
    browser = signed_in(server, "viewer")
    assert requests.get(f"{server.url}/changes", allow_redirects=False, timeout=10).status_code == 302
    bad = browser.get(f"{server.url}/changes", params={"after": "1\ndata: y"}, timeout=10)
    assert bad.status_code == 400 and "change id" in bad.text
    page = browser.get(f"{server.url}/", timeout=10).text
    url = re.search(r'data-changes="([^"]+)"', page).group(1).replace("&amp;", "&")

    received: list[tuple[str, dict]] = []
    stream = browser.get(f"{server.url}{url}", stream=True, timeout=30)
    assert stream.headers["Content-Type"].startswith("text/event-stream")

    def read():
        event_id = name = None
        for line in stream.iter_lines(decode_unicode=True):
            if line.startswith("id: "):
                event_id = line[4:]
            elif line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name == "run":
                received.append((event_id, json.loads(line[6:])))
                if received[-1][1]["status"] == "succeeded":
                    return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    sha = commit(work, {"VERSION": "1\n", ".strom/ci.yaml": PIPELINE}, "base")
    git(work, "push", "-q", "origin", "main")
    [run_id] = processed(service, push_hook(server, work, "refs/heads/main", ZERO, sha))["runs"]
    finished(service, run_id)
    wait_for(lambda: not reader.is_alive(), what="the run's end on the stream")
    stream.close()
    mine = [c for _, c in received if c["run"] == run_id]
    assert mine[0] == {"run": run_id, "workspace": "app", "task": "ci", "status": "queued"}
    assert [c["status"] for c in mine] == ["queued", "running", "succeeded"], "every status change, in order"

    first_id = received[0][0]
    later = browser.get(f"{server.url}/changes", headers={"Last-Event-ID": first_id}, stream=True, timeout=30)
    ids = []
    for line in later.iter_lines(decode_unicode=True):
        if line.startswith("id: "):
            ids.append(line[4:])
            if len(ids) == len(received) - 1:
                break
    later.close()
    assert ids == [event_id for event_id, _ in received[1:]], "a reconnect resumes after the id it names"
    assert TOKENS["viewer"] not in page


def test_streams_end_cleanly_when_redis_stops_and_resume_after_it_is_back(service_workspace, tmp_path):
    redis_server = RedisServer(directory=tmp_path, appendonly=True)
    workspace = service_workspace(
        {".strom/t.yaml": "tasks:\n  soak: { flow: { wait: { type: script, script: 'echo in; sleep 60' } } }\n"}
    )
    config = make_config(workspace, redis_server.url)
    try:
        with live_stack(config) as (service, server):
            browser = signed_in(server, "viewer")
            run_id = run_service.start(
                service, "local", run_service.load_definitions(service, "local"), "soak", {}, source="api"
            ).id
            wait_for(lambda: service.runs.load(run_id).steps["wait"].status.value == "running", what="the step")
            cursor = service.runs.last_change()
            changes = browser.get(f"{server.url}/changes?after={cursor}", stream=True, timeout=30)
            logs = browser.get(
                f"{server.url}/api/runs/{run_id}/logs?follow=1&heartbeat_ms=200", stream=True, timeout=30
            )
            assert (changes.status_code, logs.status_code) == (200, 200)
            change_lines = changes.iter_lines(decode_unicode=True)
            log_lines = logs.iter_lines(decode_unicode=True)
            assert next(change_lines) == "retry: 1000"
            assert next(line for line in log_lines if line.startswith("data: ") and '"in"' in line)
            redis_server.stop(signal.SIGKILL)
            # each stream ends as a whole response (a broken one raises ChunkedEncodingError here)
            assert [line for line in change_lines if line.startswith("event:")] == []
            assert [line for line in log_lines if line.startswith("event:")] == []
            redis_server.start()
            service.orchestrator.apply(run_id, Cancel("enough", by="admin"))
            again = browser.get(f"{server.url}/changes", headers={"Last-Event-ID": cursor}, stream=True, timeout=30)
            for line in again.iter_lines(decode_unicode=True):
                if line.startswith("data: ") and json.loads(line[6:])["status"] == "cancelled":
                    break
            again.close()
    finally:
        redis_server.stop()
