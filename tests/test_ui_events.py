"""The events pages over HTTP: every event received with what became of it, filters, a run's link back to
its event, and redelivery for admins only."""

from __future__ import annotations

import requests
from service_env import csrf, make_config, serving, signed_in, stack, wait_for

from runner.store import RunFilter

WORKSPACE = {
    ".strom/t.yaml": """
    tasks:
      hello: { flow: { s: { type: script, script: "echo hi" } } }
    triggers:
      hook: { type: webhook, name: hello-hook, task: hello }
    """
}


def test_events_are_listed_filtered_linked_from_their_runs_and_redelivered_by_admins(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service, serving(config, service) as server:
        started = requests.post(f"{server.url}/hooks/hello-hook", json={"n": 1}, timeout=10).json()
        ignored = requests.post(f"{server.url}/webhooks/github", data="{}", timeout=10)
        assert ignored.status_code in (400, 401, 404)
        run_id = started["run"]
        wait_for(lambda: service.runs.load(run_id).status.terminal, what="the run")

        viewer = signed_in(server, "viewer")
        page = viewer.get(f"{server.url}/events", timeout=10).text
        assert f'data-event="{started["id"]}"' in page and f'href="/runs/{run_id}"' in page
        assert ">Events</a>" in page
        none = viewer.get(f"{server.url}/events?status=failed", timeout=10).text
        assert f'data-event="{started["id"]}"' not in none and "No events match these filters" in none
        by_source = viewer.get(f"{server.url}/events?source=webhook&workspace=local", timeout=10).text
        assert f'data-event="{started["id"]}"' in by_source

        run_page = viewer.get(f"{server.url}/runs/{run_id}", timeout=10).text
        assert f'id="run-event" href="/events/{started["id"]}"' in run_page
        detail = viewer.get(f"{server.url}/events/{started['id']}", timeout=10).text
        assert "hello-hook" in detail and f'href="/runs/{run_id}"' in detail and 'id="redeliver"' not in detail
        assert viewer.get(f"{server.url}/events/nope", timeout=10).status_code == 404

        admin = signed_in(server, "admin")
        detail = admin.get(f"{server.url}/events/{started['id']}", timeout=10).text
        token = csrf(detail)
        refused = viewer.post(f"{server.url}/events/{started['id']}/redeliver", data={"csrf_token": token}, timeout=10)
        assert refused.status_code in (400, 403)
        again = admin.post(f"{server.url}/events/{started['id']}/redeliver", data={"csrf_token": token}, timeout=10)
        assert again.status_code == 200 and "queued again" in again.text
        record = wait_for(lambda: (r := service.repo_events.load(started["id"]))["status"] != "queued" and r)
        assert record["runs"] == [run_id], "the run it started is not started twice"
        assert len(service.runs.list(RunFilter(), limit=10).runs) == 1
