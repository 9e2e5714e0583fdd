"""The web UI in headless Chromium (Debian's, driven by Playwright) against a live server: sign in,
start a task from its form, watch its log lines arrive, see the graph change, approve a waiting
step, cancel a run, the overview following run changes live; axe-core finds no serious accessibility
violation on any page, light or dark. Screenshots of the main pages go to the test's directory, and to
docs/screenshots/ with STROM_SCREENSHOTS=1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests
from conftest import REQUIRE_ALL, need
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner import runs as run_service
from runner.engine import RunStatus
from runner.engine.events import StepAsked, StepStarted
from runner.forges.event import PullRequest
from runner.gitops.pulls import Pulls

DOCS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
WORKSPACE = {
    ".strom/ci.yaml": """
    tasks:
      build:
        input:
          target: { type: string, default: app, description: What to build }
          shards: { type: integer, default: 3 }
        flow:
          compile:
            type: script
            script: |
              printf '\\033[32mcompiling\\033[0m {{ input.target }}\\n'
              for i in 1 2 3 4 5 6; do echo "step $i of 6"; sleep 0.4; done
              echo 'OUTPUT: {"artifact": "{{ input.target }}.tgz"}'
          test:
            type: script
            for_each: "{{ range(input.shards) | list }}"
            script: 'echo "shard {{ each.item }}"'
            depends_on: [compile]
          package:
            type: script
            script: 'echo packed; echo "SUMMARY: **3 shards** packed into {{ input.target }}.tgz"'
            depends_on: [test]
      release:
        flow:
          build: { type: script, script: "echo built" }
          approve: { type: approval, message: "Release to production?", depends_on: [build] }
          ship: { type: script, script: "echo shipped", depends_on: [approve] }
      soak:
        flow:
          wait: { type: script, script: "echo soaking; sleep 60" }
      quick:
        flow:
          hello: { type: script, script: "echo hello; sleep 1" }
      plan:
        flow:
          ask: { type: agent, provider: gpt, prompt: Plan the rollout, interactive: true }
      noisy:
        flow:
          talk:
            type: script
            script: |
              echo "::group::Install"
              echo "installing a"
              echo "installing b"
              echo "::endgroup::"
              echo "compiling"
              echo "warning: deprecated call"
              sleep 0.2
              echo "error: missing semicolon" >&2
              sleep 0.2
              echo "done"
    triggers:
      nightly: { type: scheduler, cron: "0 3 * * *", task: build }
      hook: { type: webhook, name: quick-hook, task: quick }
    """
}
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]


@pytest.fixture(scope="module")
def chromium():
    path = need("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def live(service_workspace, redis_url):
    provider = {"id": "gpt", "type": "openai", "api_key": "k", "api_endpoint": "http://127.0.0.1:9/v1", "model": "m"}
    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_PUBLIC_URL="http://strom.test",
        STROM_AGENTS=json.dumps({"providers": [provider]}),  # no worker takes agent steps: the test asks itself
    )
    with stack(config) as service, serving(config, service) as server:
        yield service, server


@pytest.fixture
def page(chromium, live):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    refused = []  # what the Content-Security-Policy blocked: every script and style must be the server's own
    page.on(
        "console", lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None
    )
    yield page
    context.close()
    assert refused == []


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's script, from the npm registry (`npm install -g axe-core`, as .ci/run does)."""
    npm = need("npm")
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=True).stdout.strip()
    script = Path(root) / "axe-core" / "axe.min.js"
    if not script.is_file():
        message = f"axe-core is not installed ({script}): npm install -g axe-core"
        pytest.fail(message) if REQUIRE_ALL else pytest.skip(message)
    return script.read_text(encoding="utf-8")


def accessibility_problems(page, axe_script: str) -> list[str]:
    """axe-core's serious and critical violations on the page as it is (evaluated by the browser's debugger,
    which the page's Content-Security-Policy does not govern)."""
    page.evaluate(axe_script + "\n;true")
    return page.evaluate(
        """axe.run(document, {resultTypes: ["violations"]}).then((result) => result.violations
          .filter((v) => v.impact === "serious" || v.impact === "critical")
          .map((v) => v.id + ": " + v.help + " at " + v.nodes.map((n) => n.target.join(" ")).join(", ")))"""
    )


def shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    if os.environ.get("STROM_SCREENSHOTS") == "1":
        DOCS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS / f"{name}.png")


def submit(page, server, button: str) -> str:
    """Press a form's button that starts a run; the id of the run whose page it leads to."""
    page.click(button)
    page.wait_for_url(f"{server.url}/runs/*")
    return page.url.rsplit("/", 1)[1]


def sign_in(page, server, role="admin"):
    page.goto(f"{server.url}/tasks")
    assert page.url.startswith(f"{server.url}/login?next=/tasks")
    page.fill("#token", TOKENS[role])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/tasks")


def test_start_a_task_from_its_form_and_watch_it_live(page, live, tmp_path):
    service, server = live
    sign_in(page, server)
    page.click("text=Run build")
    page.fill("#build-target", "web")
    shot(page, tmp_path, "tasks")
    run_id = submit(page, server, "#run-build")
    log = page.locator('pre.log[data-log="compile"]')
    log.locator("text=step 2 of 6").wait_for(timeout=15_000)
    assert service.runs.load(run_id).steps["compile"].status.value == "running", "lines arrive while it runs"
    assert page.locator('g.node[data-step="compile"]').get_attribute("class") == "node running"
    assert log.locator("span.ansi-32").inner_text() == "compiling", "ANSI colours are rendered"
    # (no wait_for_function: the page's Content-Security-Policy forbids evaluating strings, rightly)
    page.locator('g.node.succeeded[data-step="package"]').wait_for(timeout=30_000)
    page.locator('g.node[data-step="test"] .sub:text-is("succeeded · 3/3 done")').wait_for(
        timeout=10_000
    )  # the page reloads when the run ends
    assert page.locator("#run-status").get_attribute("class") == "status succeeded"
    assert page.locator(".timeline .lane").count() >= 5, "a bar per step and instance"
    assert '"artifact": "web.tgz"' in page.locator("#step-compile pre.json").inner_text()
    summary = page.locator('#step-package .summary[data-summary-of="package"]')
    assert summary.inner_text().strip() == "3 shards packed into web.tgz", "the step's summary, as Markdown"
    assert summary.locator("strong").inner_text() == "3 shards"
    shot(page, tmp_path, "run")
    page.goto(f"{server.url}/runs")
    assert page.locator(f'tr[data-run="{run_id}"] .status').inner_text() == "succeeded"
    shot(page, tmp_path, "runs")


def test_approve_a_waiting_step_and_cancel_a_run(page, live, tmp_path):
    service, server = live
    sign_in(page, server)
    page.click("text=Run release")
    run_id = submit(page, server, "#run-release")
    wait_for(lambda: service.runs.load(run_id).status is RunStatus.WAITING, what="the gate")
    page.goto(f"{server.url}/runs/{run_id}?step=approve")
    assert page.locator("#step-approve .message").inner_text() == "Release to production?"
    assert page.locator('g.node[data-step="approve"]').get_attribute("class") == "node waiting"
    shot(page, tmp_path, "approval")
    page.fill('#step-approve form.decide input[name="reason"] >> nth=0', "checked the diff")
    page.click("#approve-approve")
    page.locator("text=Approved approve.").wait_for()
    page.locator("#run-status.succeeded").wait_for(timeout=20_000)
    assert service.runs.load(run_id).steps["approve"].output["approved_by"] == "admin"
    assert "Approved by admin" in page.locator("#step-approve").inner_text()

    page.goto(f"{server.url}/tasks")
    page.click("text=Run soak")
    soak = submit(page, server, "#run-soak")
    page.locator('pre.log[data-log="wait"] >> text=soaking').wait_for(timeout=15_000)
    page.click("#cancel")
    page.locator("#run-status.cancelled").wait_for(timeout=20_000)
    assert service.runs.load(soak).status is RunStatus.CANCELLED
    page.locator('g.node.cancelled[data-step="wait"]').wait_for(timeout=10_000)


def test_run_an_ad_hoc_command_and_pause_and_resume_a_trigger(page, live, tmp_path):
    service, server = live
    sign_in(page, server)
    page.click("text=Run an ad-hoc command")
    page.fill("#adhoc-script", 'echo "from the browser in $(pwd)"')
    page.fill("#adhoc-name", "look")
    page.fill("#adhoc-timeout", "9999")
    page.click("#run-adhoc")
    page.locator("#adhoc .field.invalid >> text=whole seconds from 1 to 3600").wait_for()
    assert page.locator("#adhoc-script").input_value() == 'echo "from the browser in $(pwd)"', "what was typed stays"
    page.fill("#adhoc-timeout", "60")
    run_id = submit(page, server, "#run-adhoc")
    page.locator("#run-status.succeeded").wait_for(timeout=20_000)
    assert "exec: look" in page.locator("h1").inner_text()
    assert page.locator('pre.log[data-log="exec"] .line .text').inner_text() == "from the browser in /workspace"
    assert service.runs.load(run_id).source == "exec"

    page.goto(f"{server.url}/tasks")
    page.click("text=Pause nightly")
    badge = page.locator("#task-build .triggers .badge.paused")
    badge.wait_for()
    assert badge.inner_text() == "paused by admin" and "trigger:nightly" in service.pauses.of("local")
    shot(page, tmp_path, "paused")
    page.click("text=Resume nightly")
    page.locator("text=Trigger nightly resumed.").wait_for()
    assert page.locator("#task-build .triggers .badge.paused").count() == 0 and service.pauses.of("local") == {}


def test_the_pages_follow_the_systems_dark_mode(chromium, live):
    _service, server = live
    for scheme, background in (("dark", "rgb(15, 18, 23)"), ("light", "rgb(246, 247, 249)")):
        context = chromium.new_context(color_scheme=scheme)
        page = context.new_page()
        page.goto(f"{server.url}/login")
        colour = page.locator("body").evaluate("(b) => getComputedStyle(b).backgroundColor")
        context.close()
        assert colour == background, (scheme, colour)


def test_log_anchors_groups_search_timestamps_first_error_and_download(page, live, tmp_path):
    service, server = live
    sign_in(page, server)
    page.click("text=Run noisy")
    run_id = submit(page, server, "#run-noisy")
    wait_for(lambda: service.runs.load(run_id).status.terminal, what="the run")
    page.goto(f"{server.url}/runs/{run_id}#step-talk-L3")
    log = page.locator('pre.log[data-log="talk"]')
    picked = log.locator("#step-talk-L3.picked")
    picked.wait_for(timeout=10_000)
    assert picked.locator(".text").inner_text() == "installing b", "the anchored line, its group opened"
    assert log.locator("details.group[open] summary .group-title").inner_text() == "Install"
    assert log.locator(".line").count() == 7, "::endgroup:: is not a line"
    assert log.locator(".line .ln").first.inner_text() == "1"

    page.fill('input.log-search[data-for="talk"]', "installing")
    assert page.locator('[data-count-for="talk"]').inner_text() == "2 of 7 lines"
    assert log.locator(".line:not(.miss) .text").all_inner_texts() == ["installing a", "installing b"]
    page.fill('input.log-search[data-for="talk"]', "")
    assert log.locator(".line.miss").count() == 0

    page.click('button[data-first-error="talk"]')
    first = log.locator(".line.picked.stderr")
    first.wait_for()
    assert first.locator(".text").inner_text() == "error: missing semicolon"
    assert page.url.endswith("#" + first.get_attribute("id"))

    page.click('button[data-times="talk"]')
    assert "times" in log.get_attribute("class")
    stamp = log.locator(".line").first.get_attribute("data-time")
    assert len(stamp) == 12 and stamp[2] == ":" and stamp[8] == "."

    link = page.locator(".log-tools a[download]").first
    text = page.request.get(server.url + link.get_attribute("href")).text()
    assert "installing b" in text and "error: missing semicolon" in text
    shot(page, tmp_path, "logs")


def test_the_overview_and_the_runs_list_follow_runs_to_their_end_without_reloading(page, live, tmp_path):
    service, server = live
    sign_in(page, server)
    page.goto(f"{server.url}/")
    page.locator("#overview[data-live=yes]").wait_for(timeout=10_000)
    page.evaluate("window.stillTheSamePage = true")
    checkout = run_service.load_definitions(service, "local")
    run_id = run_service.start(service, "local", checkout, "quick", {}, source="api").id
    cell = page.locator('section[data-workspace="local"] td[data-task="quick"]')
    cell.locator("a.status.running").wait_for(timeout=15_000)
    cell.locator("a.status.succeeded").wait_for(timeout=15_000)
    assert cell.locator("a.status").get_attribute("href") == f"/runs/{run_id}"
    assert page.evaluate("window.stillTheSamePage") is True, "the grid was redrawn in place, not reloaded"
    assert service.runs.load(run_id).status is RunStatus.SUCCEEDED
    shot(page, tmp_path, "overview")

    page.goto(f"{server.url}/runs")
    page.locator("#runs[data-live=yes]").wait_for(timeout=10_000)
    page.evaluate("window.stillTheSamePage = true")
    second = run_service.start(service, "local", checkout, "quick", {}, source="api").id
    page.locator(f'tr[data-run="{second}"] .status.succeeded').wait_for(timeout=15_000)
    assert page.evaluate("window.stillTheSamePage") is True, "the runs list too follows the changes in place"


SHOTS = {"/events": "events", "/workers": "workers", "/pulls/local/7": "pull", "/trends/local/quick": "trends"}


def test_no_page_has_a_serious_accessibility_violation_in_light_or_dark(chromium, live, axe, tmp_path):
    service, server = live
    fired = requests.post(f"{server.url}/hooks/quick-hook", json={"n": 1}, timeout=10).json()
    checkout = run_service.load_definitions(service, "local")
    head = "ab" * 20
    Pulls(service.redis, "local").remember(PullRequest(7, "opened", "Fix it", head, "fix", "main", True, "mallory"))
    event = {"kind": "pull_request", "pr": {"number": 7, "head_sha": head}, "actor": "mallory"}
    gated = run_service.start(service, "local", checkout, "release", {}, source="github", event=event).id
    wait_for(lambda: service.runs.load(gated).status is RunStatus.WAITING, what="the gate")
    wait_for(lambda: service.runs.load(fired["run"]).status.terminal, what="the hook's run")
    asked = run_service.execute(service, "local", "plan", {}).id  # its question, as an agent step's worker asks it
    service.orchestrator.apply(asked, StepStarted("ask", 1, worker="agent-worker"))
    service.orchestrator.apply(asked, StepAsked("ask", 1, "Which region first: eu-west or us-east?"))
    pages = [
        "/",
        "/runs",
        f"/runs/{gated}",
        f"/runs/{fired['run']}",
        f"/runs/{asked}",
        "/tasks",
        "/events",
        f"/events/{fired['id']}",
        "/workers",
        "/pulls/local/7",
        "/trends/local/quick",
        "/runs/nope",
    ]
    found = {}
    for scheme in ("light", "dark"):
        context = chromium.new_context(color_scheme=scheme, viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(f"{server.url}/login")
        found[(scheme, "/login")] = accessibility_problems(page, axe)
        page.fill("#token", TOKENS["admin"])
        page.click("button[type=submit]")
        page.wait_for_url(f"{server.url}/")
        for path in pages:
            page.goto(server.url + path)
            if path == f"/runs/{asked}":  # the question's card, with its answer box, is what axe checks there
                assert page.locator("#step-ask .approval.question textarea[name=answer]").count() == 1
            found[(scheme, path)] = accessibility_problems(page, axe)
            if scheme == "light" and path in SHOTS:
                shot(page, tmp_path, SHOTS[path])
        context.close()
    bad = {where: problems for where, problems in found.items() if problems}
    assert bad == {}, "\n".join(f"{w}: {p}" for w, ps in bad.items() for p in ps)
