"""A pull request's page: its facts, whether it is trusted (and how), its runs across commits, and the gates
waiting with who may approve; a run of a pull request links to it."""

from __future__ import annotations

import re

from service_env import make_config, serving, signed_in, stack, wait_for

from runner import runs as run_service
from runner.engine import RunStatus
from runner.forges.event import PullRequest
from runner.gitops.pulls import Pulls
from runner.gitops.trust import Trust

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      test: { flow: { s: { type: script, script: "true" } } }
      ship:
        flow:
          ask: { type: approval, message: "Ship the fix?", approvers: [alice, bob] }
    """
}


def test_a_pull_requests_page_shows_trust_runs_and_waiting_gates(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service, serving(config, service) as server:
        head = "ab" * 20
        pr = PullRequest(7, "opened", "Fix the login", head, "fix-login", "main", True, "mallory", url="https://f/pr/7")
        Pulls(service.redis, "local").remember(pr)
        checkout = run_service.load_definitions(service, "local")
        event = {"kind": "pull_request", "pr": {"number": 7, "head_sha": head}, "actor": "mallory"}
        started = [
            run_service.start(service, "local", checkout, task, {}, source="github", event=event).id
            for task in ("test", "ship")
        ]
        wait_for(lambda: service.runs.load(started[0]).status.terminal, what="the test run")
        wait_for(lambda: service.runs.load(started[1]).status is RunStatus.WAITING, what="the gate")

        browser = signed_in(server, "viewer")
        page = browser.get(f"{server.url}/pulls/local/7", timeout=10).text
        assert "Fix the login" in page and "fix-login" in page and "from a fork" in page
        assert 'href="https://f/pr/7"' in page
        assert '<p id="trust">untrusted: its runs wait for /ok-to-test' in page
        assert sorted(re.findall(r'<tr data-run="(\w+)">', page)) == sorted(started)
        gate = re.search(r'<li data-gate="[^"]+/ask">(.*?)</li>', page, re.S).group(1)
        assert "Ship the fix?" in gate and "needs 1 of alice, bob" in gate and "/approve ask" in gate

        Trust(service, config.workspaces["local"]).approve(7, head, "alice")
        assert '<p id="trust">trusted: /ok-to-test was given' in browser.get(f"{server.url}/pulls/local/7").text
        run_page = browser.get(f"{server.url}/runs/{started[0]}", timeout=10).text
        assert 'id="run-pull" href="/pulls/local/7"' in run_page
        assert browser.get(f"{server.url}/pulls/local/8", timeout=10).status_code == 404
        assert browser.get(f"{server.url}/pulls/nope/7", timeout=10).status_code == 404
