"""The workers page over HTTP: live workers with what they run, the step queues with their depth and oldest
waiting step (a queue no live worker takes is said so), and the schedulers."""

from __future__ import annotations

import re

import requests
from service_env import TOKENS, Procs, make_config, serving, signed_in, stack, wait_for

from runner.engine import RunStatus

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      slow: { flow: { s: { type: script, script: "sleep 30" } } }
      gpu: { flow: { s: { type: script, script: "true", tags: [gpu] } } }
    """
}


def test_the_workers_page_shows_workers_their_steps_and_stuck_queues(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    with stack(config, concurrency=3) as service, serving(config, service) as server:
        browser = signed_in(server, "viewer")
        wait_for(lambda: service.workers.live(), what="the worker's first heartbeat")

        slow = requests.post(f"{server.url}/api/workspaces/local/tasks/slow/execute", json={}, headers=admin).json()
        wait_for(lambda: service.runs.load(slow["id"]).status is RunStatus.RUNNING, what="the slow step")
        gpu = requests.post(f"{server.url}/api/workspaces/local/tasks/gpu/execute", json={}, headers=admin).json()
        wait_for(lambda: service.runs.load(gpu["id"]).steps["s"].status.value == "queued", what="the gpu step")

        page = browser.get(f"{server.url}/workers", timeout=10).text
        assert 'data-worker="test-worker-0"' in page and ">Workers</a>" in page
        assert 'data-busy="test-worker-0">1 of 3<' in page
        assert f'href="/runs/{slow["id"]}?step=s">slow › s</a>' in page
        row = re.search(r'<tr data-queue="strom-script\+gpu">(.*?)</tr>', page, re.S).group(1)
        assert "no live worker takes these" in row and 'data-depth="strom-script+gpu">1<' in row
        assert "ability &#39;script&#39; with tags [gpu]" in row
        assert 'data-depth="strom-script">0<' in page
        assert "data-scheduler=" in page
        requests.post(f"{server.url}/api/runs/{slow['id']}/cancel", headers=admin)
        requests.post(f"{server.url}/api/runs/{gpu['id']}/cancel", headers=admin)
        wait_for(lambda: service.runs.load(slow["id"]).status.terminal, what="the cancel")


def test_a_worker_appears_and_once_killed_is_listed_as_lost(service_workspace, redis_url, tmp_path):
    root = service_workspace(WORKSPACE)
    config = make_config(root, redis_url)
    procs = Procs(root, redis_url, tmp_path)
    with stack(config, workers=0) as service, serving(config, service) as server:
        browser = signed_in(server, "viewer")
        try:
            procs.start("doomed", "worker", "--name", "doomed", "--tags", "gpu")
            wait_for(
                lambda: 'data-worker="doomed"' in browser.get(f"{server.url}/workers").text,
                30,
                what="the new worker on the page",
            )
            procs.kill("doomed")
            page = wait_for(
                lambda: (text := browser.get(f"{server.url}/workers").text) and 'data-lost="doomed"' in text and text,
                10,
                what="the killed worker found lost",
            )
        finally:
            procs.stop_all()
        assert 'data-worker="doomed"' not in page
        row = re.search(r'<tr data-lost="doomed">(.*?)</tr>', page, re.S).group(1)
        assert "gpu" in row and "script" in row and " ago" in row
        [(info, _at)] = service.workers.lost()
        assert info.name == "doomed" and info.tags == ("gpu",)
