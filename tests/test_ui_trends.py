"""The trends page: the last runs of a task as an SVG chart (outcome as colour, duration as height, oldest
first), the share that succeeded, and the slowest steps; and the chart's arithmetic on its own."""

from __future__ import annotations

import re

import requests
from service_env import TOKENS, make_config, serving, signed_in, stack, wait_for

from runner.engine import RunState, RunStatus, StepRun, StepStatus
from webhooks.ui.trends import H, chart, slowest_steps

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      job:
        input: { fail: { type: boolean, default: false } }
        flow:
          quick: { type: script, script: "true" }
          slower: { type: script, script: "sleep 0.3; [ {{ input.fail }} = false ]", depends_on: [quick] }
    """
}


def _run(i: int, seconds: float | None, status: RunStatus) -> RunState:
    finished = 100.0 + i * 10 + seconds if seconds is not None else None
    steps = {"a": StepRun("a", "a", status=StepStatus.SUCCEEDED, started_at=100.0 + i * 10, finished_at=101.0 + i * 10)}
    return RunState(
        id=f"r{i}",
        workspace="w",
        task="t",
        created_at=100.0 + i * 10,
        started_at=100.0 + i * 10,
        finished_at=finished,
        status=status,
        steps=steps,
    )


def test_the_chart_is_oldest_first_scaled_to_the_longest_run():
    newest_first = [_run(2, None, RunStatus.RUNNING), _run(1, 4.0, RunStatus.FAILED), _run(0, 2.0, RunStatus.SUCCEEDED)]
    columns, longest = chart(newest_first)
    assert longest == 4.0
    assert [(c.run, c.status, c.height, c.y) for c in columns] == [
        ("r0", "succeeded", H // 2, H - H // 2),
        ("r1", "failed", H, 0),
        ("r2", "running", 4, H - 4),
    ]
    assert [c.x for c in columns] == [0, 10, 20]
    assert slowest_steps(newest_first) == [("a", 1.0, 3)]
    assert chart([]) == ([], 1.0)


def test_the_trends_page_charts_a_tasks_runs_and_its_slowest_steps(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    with stack(config) as service, serving(config, service) as server:
        ids = []
        for fail in (False, True, False):
            run = requests.post(
                f"{server.url}/api/workspaces/local/tasks/job/execute", json={"input": {"fail": fail}}, headers=admin
            ).json()
            wait_for(lambda r=run["id"]: service.runs.load(r).status.terminal, what="a run")
            ids.append(run["id"])
        browser = signed_in(server, "viewer")
        page = browser.get(f"{server.url}/trends/local/job", timeout=10).text
        bars = re.findall(r'<rect class="bar (\w+)" data-run="(\w+)"', page)
        assert bars == [("succeeded", ids[0]), ("failed", ids[1]), ("succeeded", ids[2])], "oldest first"
        assert "67% succeeded" in page
        slowest = re.findall(r'<tr data-step="([^"]+)">', page)
        assert slowest[0] == "slower" and "quick" in slowest
        assert 'href="/trends/local/job">trends</a>' in browser.get(f"{server.url}/tasks", timeout=10).text
        assert "No runs of this task yet" in browser.get(f"{server.url}/trends/local/none", timeout=10).text
        assert browser.get(f"{server.url}/trends/nope/job", timeout=10).status_code == 404
