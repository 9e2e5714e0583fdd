"""The UI and API under a path prefix (public_url https://host/ci): every link, redirect and asset carries it,
whether the reverse proxy passes the prefix on or strips it."""

from __future__ import annotations

import requests
from service_env import TOKENS, csrf, make_config, serving, stack, wait_for

WORKSPACE = {".strom/t.yaml": "tasks:\n  hello: { flow: { s: { type: script, script: 'echo hi' } } }\n"}


def test_the_ui_works_under_a_path_prefix(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_PUBLIC_URL="http://strom.test/ci")
    with stack(config) as service, serving(config, service) as server:
        base = f"{server.url}/ci"
        browser = requests.Session()
        first = browser.get(f"{base}/runs/abc?step=x", allow_redirects=False, timeout=10)
        assert first.status_code == 302 and first.headers["Location"] == "/ci/login?next=/runs/abc?step%3Dx"
        form = browser.get(f"{base}/login", timeout=10).text
        assert 'href="/ci/ui/static/strom.css"' in form
        assert browser.get(f"{base}/ui/static/strom.css", timeout=10).status_code == 200
        token = csrf(form)
        signed = browser.post(
            f"{base}/login?next=/tasks", data={"token": TOKENS["admin"], "csrf_token": token}, allow_redirects=False
        )
        assert signed.status_code == 302 and signed.headers["Location"] == "/ci/tasks"
        tasks = browser.get(f"{base}/tasks", timeout=10).text
        assert 'href="/ci/runs"' in tasks and 'action="/ci/tasks/local/hello/run"' in tasks
        token = csrf(tasks)
        started = browser.post(f"{base}/tasks/local/hello/run", data={"csrf_token": token}, allow_redirects=False)
        assert started.headers["Location"].startswith("/ci/runs/")
        run_id = started.headers["Location"].rsplit("/", 1)[1]
        wait_for(lambda: service.runs.load(run_id).status.terminal, what="the run")
        page = browser.get(f"{base}/runs/{run_id}", timeout=10).text
        assert f'data-logs="/ci/api/runs/{run_id}/logs?follow=1"' in page
        overview = browser.get(f"{base}/", timeout=10).text
        assert 'data-changes="/ci/changes?after=' in overview and 'data-fragment="/ci/?fragment=1"' in overview
        assert f'href="/ci/runs/{run_id}"' in overview
        api = requests.get(f"{base}/api/runs/{run_id}", headers={"Authorization": f"Bearer {TOKENS['viewer']}"})
        assert api.status_code == 200 and api.json()["url"] == f"http://strom.test/ci/runs/{run_id}"
        stripped = browser.get(f"{server.url}/tasks", timeout=10).text  # a proxy that strips the prefix
        assert 'href="/ci/runs"' in stripped
