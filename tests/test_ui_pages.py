"""The web UI's pages over HTTP: sign-in, the session cookie, CSRF on every form, what each role is
offered, the run form's validation, deep links, and the API read with the session."""

from __future__ import annotations

import re

import pytest
import requests
from service_env import TOKENS, csrf, log_in, make_config, serving, signed_in, stack, wait_for

from runner.engine import RunStatus

WORKSPACE = {
    ".strom/ui.yaml": """
    tasks:
      greet:
        input:
          name: { type: string, required: true, description: Who to greet }
          times: { type: integer, default: 2 }
          loud: { type: boolean, default: false }
          colour: { type: string, options: [red, green], default: green }
        flow:
          hello: { type: script, script: 'echo "hello {{ input.name }} x{{ input.times }}"' }
          after: { type: script, script: "echo done", depends_on: [hello] }
      gate:
        flow:
          ask: { type: approval, message: "ship it?" }
          go: { type: script, script: "echo went", depends_on: [ask] }
      pair:
        flow:
          ask: { type: approval, message: "two of us?", required: 2 }
      pick:
        input:
          regions: { type: string, options: ["eu, west", "us"], multiple: true, required: true }
          key: { type: string, secret: true, required: true }
          count: { type: integer, required: true }
        flow:
          show: { type: script, script: 'echo "{{ input.regions | join("|") }}"' }
      staged:
        stages:
          - name: check
            steps:
              lint: { type: script, script: "true" }
              unit: { type: script, script: "true" }
          - name: release
            steps:
              publish: { type: script, script: "true" }
    triggers:
      nightly: { type: scheduler, cron: "0 3 * * *", task: greet, input: { name: night } }
    """
}


@pytest.fixture
def live(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_PUBLIC_URL="http://strom.test")
    with stack(config) as service, serving(config, service) as server:
        yield service, server


def test_sign_in_sets_a_strict_session_cookie_and_pages_need_it(live):
    _service, server = live
    anonymous = requests.get(f"{server.url}/runs/abc?step=x", allow_redirects=False, timeout=10)
    assert anonymous.status_code == 302 and anonymous.headers["Location"] == "/login?next=/runs/abc?step%3Dx"
    wrong = log_in(server, "nope")
    assert wrong.status_code == 401 and "That is not a token this server knows." in wrong.text
    forged = requests.post(f"{server.url}/login", data={"token": TOKENS["viewer"]}, allow_redirects=False, timeout=10)
    assert forged.status_code == 400 and "strom_session=" not in forged.headers.get("Set-Cookie", ""), (
        "a form posted from another site signs no one in"
    )
    answer = log_in(server, TOKENS["viewer"], next="/tasks")
    cookie = answer.headers["Set-Cookie"]
    assert answer.headers["Location"] == "/tasks"
    assert "strom_session=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert TOKENS["viewer"] not in cookie
    for target in ("https://evil.example/x", "//evil.example/x", "/\\evil.example/x"):
        elsewhere = log_in(server, TOKENS["viewer"], next=target)
        assert elsewhere.headers["Location"] == "/", f"next={target} never leaves the site"
    browser = signed_in(server, "viewer")
    assert browser.get(f"{server.url}/api/runs", timeout=10).status_code == 200, "the session reads the API"
    assert (
        browser.post(f"{server.url}/api/workspaces/local/tasks/greet/execute", json={}, timeout=10).status_code == 401
    ), "but never writes through it"


def test_forms_need_the_csrf_token_and_roles_see_only_what_they_may_do(live):
    service, server = live
    viewer = signed_in(server, "viewer")
    tasks = viewer.get(f"{server.url}/tasks", timeout=10).text
    assert "Run greet" not in tasks and "0 3 * * *" in tasks and "next 20" in tasks
    admin = signed_in(server, "admin")
    page = admin.get(f"{server.url}/tasks?task=greet", timeout=10).text
    assert 'id="run-greet"' in page and "Who to greet" in page
    assert re.search(r'<label for="greet-name">name <span class="required"', page)
    assert 'id="greet-times" name="times" value="2" type="number"' in page
    forged = admin.post(f"{server.url}/tasks/local/greet/run", data={"name": "x"}, timeout=10)
    assert forged.status_code == 400 and "the form is stale" in forged.text
    invalid = admin.post(
        f"{server.url}/tasks/local/greet/run",
        timeout=10,
        data={"csrf_token": csrf(page), "name": "", "times": "many", "colour": "green"},
    )
    assert invalid.status_code == 422
    assert re.search(r'<div class="field invalid">\s*<label for="greet-times">', invalid.text)
    assert 'role="alert">' in invalid.text and 'value="many"' in invalid.text, "the form keeps what was typed"
    started = admin.post(
        f"{server.url}/tasks/local/greet/run",
        allow_redirects=False,
        timeout=10,
        data={"csrf_token": csrf(page), "name": "ada", "times": "3", "colour": "red", "loud": "true"},
    )
    assert started.status_code == 302 and started.headers["Location"].startswith("/runs/")
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
    assert state.status is RunStatus.SUCCEEDED and dict(state.inputs) == {
        "name": "ada",
        "times": 3,
        "loud": True,
        "colour": "red",
    }
    assert (state.source, (state.event or {}).get("actor")) == ("ui", "admin")
    run_page = viewer.get(f"{server.url}/runs/{run_id}", timeout=10).text
    assert 'id="cancel"' not in run_page and 'id="rerun"' not in run_page, "a viewer is offered nothing"
    assert 'data-step="hello"' in run_page and 'class="node succeeded"' in run_page
    assert 'data-from="hello" data-to="after"' in run_page
    listing = viewer.get(f"{server.url}/runs?task=greet&status=succeeded", timeout=10).text
    assert run_id in listing and "local/<b>greet</b>" in listing


def test_approvals_cancel_and_rerun_from_the_pages(live):
    service, server = live
    admin = signed_in(server, "admin")
    page = admin.get(f"{server.url}/tasks", timeout=10).text
    first = admin.post(f"{server.url}/tasks/local/gate/run", data={"csrf_token": csrf(page)}, timeout=10)
    run_id = first.url.rsplit("/", 1)[1]
    wait_for(lambda: service.runs.load(run_id).status is RunStatus.WAITING, what="the gate")
    approver = signed_in(server, "approver")
    run_page = approver.get(f"{server.url}/runs/{run_id}?step=ask", timeout=10).text
    assert "ship it?" in run_page and 'id="approve-ask"' in run_page and 'data-focus="ask"' in run_page
    assert 'id="cancel"' not in run_page, "an approver may not cancel"
    answer = approver.post(
        f"{server.url}/runs/{run_id}/steps/ask/reject",
        data={"csrf_token": csrf(run_page), "reason": "not today"},
        timeout=10,
    )
    assert "Rejected ask." in answer.text and "Rejected by <b>approver</b>" in answer.text
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
    assert state.steps["ask"].error == "rejected by approver: not today"
    stolen = admin.post(f"{server.url}/runs/{run_id}/rerun", data={"csrf_token": csrf(run_page)}, timeout=10)
    assert stolen.status_code == 400, "another session's CSRF token does not work"
    token = csrf(page)
    again = admin.post(f"{server.url}/runs/{run_id}/rerun", data={"csrf_token": token}, timeout=10)
    second = again.url.rsplit("/", 1)[1]
    assert second != run_id and f're-run of <a href="/runs/{run_id}">' in again.text
    wait_for(lambda: service.runs.load(second).status is RunStatus.WAITING, what="the second gate")
    cancelled = admin.post(f"{server.url}/runs/{second}/cancel", data={"csrf_token": token}, timeout=10)
    assert "Cancelling" in cancelled.text
    assert wait_for(lambda: (s := service.runs.load(second)).status.terminal and s).status is RunStatus.CANCELLED
    missing = admin.get(f"{server.url}/runs/nope", timeout=10)
    assert missing.status_code == 404 and "no run nope" in missing.text and "<html" in missing.text


def test_a_staged_task_shows_its_stages_in_the_graph_the_timeline_and_the_api(live):
    service, server = live
    admin = signed_in(server, "admin")
    page = admin.get(f"{server.url}/tasks", timeout=10).text
    started = admin.post(f"{server.url}/tasks/local/staged/run", data={"csrf_token": csrf(page)}, timeout=10)
    run_id = started.url.rsplit("/", 1)[1]
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
    assert state.status is RunStatus.SUCCEEDED
    assert state.steps["publish"].started_at >= max(state.steps[n].finished_at for n in ("lint", "unit"))
    run_page = admin.get(f"{server.url}/runs/{run_id}", timeout=10).text
    assert re.findall(r'<g class="stage" data-stage="([^"]+)"', run_page) == ["check", "release"]
    assert not re.findall(r'<path class="edge"', run_page), "the order between stages is the bands, not edges"
    assert sorted(re.findall(r'data-stage-of="([^"]+)">([^<]+) ·', run_page)) == [
        ("lint", "check"),
        ("publish", "release"),
        ("unit", "check"),
    ]
    described = admin.get(f"{server.url}/api/workspaces/local/tasks/staged", timeout=10).json()
    assert described["stages"] == ["check", "release"]
    assert [(s["name"], s["stage"], s["depends_on"]) for s in described["steps"]] == [
        ("lint", "check", []),
        ("unit", "check", []),
        ("publish", "release", ["lint", "unit"]),
    ]


def test_one_choice_of_a_multiple_select_stays_whole_and_secrets_are_not_shown_again(live):
    service, server = live
    admin = signed_in(server, "admin")
    page = admin.get(f"{server.url}/tasks?task=pick", timeout=10).text
    invalid = admin.post(
        f"{server.url}/tasks/local/pick/run",
        timeout=10,
        data={"csrf_token": csrf(page), "regions": "eu, west", "key": "hunter2-secret", "count": "x"},
    )
    assert invalid.status_code == 422 and "hunter2-secret" not in invalid.text
    assert "<option selected>eu, west</option>" in invalid.text
    started = admin.post(
        f"{server.url}/tasks/local/pick/run",
        allow_redirects=False,
        timeout=10,
        data={"csrf_token": csrf(page), "regions": "eu, west", "key": "hunter2-secret", "count": "1"},
    )
    run_id = started.headers["Location"].rsplit("/", 1)[1]
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, what="the run")
    assert state.inputs["regions"] == ["eu, west"]
    assert "hunter2-secret" not in admin.get(f"{server.url}/runs/{run_id}", timeout=10).text


def test_someone_who_already_approved_may_still_reject(live):
    service, server = live
    admin = signed_in(server, "admin")
    page = admin.get(f"{server.url}/tasks", timeout=10).text
    run_id = admin.post(f"{server.url}/tasks/local/pair/run", data={"csrf_token": csrf(page)}, timeout=10).url.rsplit(
        "/", 1
    )[1]
    wait_for(lambda: service.runs.load(run_id).status is RunStatus.WAITING, what="the gate")
    once = admin.post(f"{server.url}/runs/{run_id}/steps/ask/approve", data={"csrf_token": csrf(page)}, timeout=10)
    assert "Approved ask." in once.text and 'id="approve-ask"' not in once.text
    assert "You cannot approve this gate: admin has already approved `ask`" in once.text.replace("&#96;", "`")
    assert 'id="reject-ask"' in once.text


def test_the_runs_page_goes_on_to_older_runs_past_a_page_and_past_a_long_scan(service_workspace, redis_url):
    from dataclasses import replace

    from runner import runs
    from runner.store.runs import SCAN_BUDGET

    def made(i: int):  # the 60 oldest: main and queued; then main and succeeded, dev and queued in turn
        branch, status = (
            ("main", RunStatus.QUEUED) if i < 120 else (("main", RunStatus.SUCCEEDED), ("dev", RunStatus.QUEUED))[i % 2]
        )
        return replace(base, id=f"r{i:05d}", created_at=1000.0 + i, git={"branch": branch}, status=status)

    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config, workers=0, scheduler=False) as service, serving(config, service) as server:
        base = runs.execute(service, "local", "gate", {})
        states = [made(i) for i in range(2 * SCAN_BUDGET + 120) if i >= 120 or i % 2 == 0]
        with service.redis.pipeline() as pipe:
            for state in states:
                service.runs.stage(pipe, None, state, 0)
            pipe.execute()
        browser = signed_in(server, "viewer")
        pages, url = [], f"{server.url}/runs?branch=main&status=queued&before=nan"
        while url and len(pages) < 10:
            html = browser.get(url, timeout=30).text
            pages.append(re.findall(r'data-run="(r\d+)"', html))
            older = re.search(r'<p class="older"><a href="([^"]+)"', html)
            url = server.url + older.group(1).replace("&amp;", "&") if older else None
        wanted = [f"r{i:05d}" for i in range(118, -1, -2)]
        assert [len(p) for p in pages] == [0, 50, 10], "a long scan stops and says so; then pages of 50"
        assert [run for page in pages for run in page] == wanted, "a malformed `before` reads as none"
