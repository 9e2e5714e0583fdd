"""The API from inside steps: a task with `api: true` gives its steps STROM_URL and a token of their run,
which works in its workspace only, for reading and starting runs, and only while the run lasts."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import requests
from click.testing import CliRunner
from conftest import write_workspace
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner.cli import main
from runner.engine import RunStatus
from runner.store import RunFilter

WORKSPACE = {
    ".strom/api.yaml": """
    tasks:
      child:
        input: { who: { type: string, default: nobody } }
        flow: { hi: { type: script, script: 'echo "child for {{ input.who }}"' } }
      orchestrate:
        api: true
        flow:
          call:
            type: script
            script: |
              echo "token: $STROM_TOKEN"
              api() { curl -sS --fail-with-body -H "Authorization: Bearer $STROM_TOKEN" "$@"; echo; }
              api -H 'Content-Type: application/json' -d '{"input": {"who": "parent"}}' \\
                "$STROM_URL/api/workspaces/$STROM_WORKSPACE_NAME/tasks/child/execute" | grep -o '"task": *"child"'
              api "$STROM_URL/api/runs/$STROM_JOB_ID" | grep -o '"status": *"running"' | head -1
          wait: { type: approval, depends_on: [call] }
      plain:
        flow: { env: { type: script, script: 'echo "url=${STROM_URL:-none} token=${STROM_TOKEN:-none}"' } }
    """,
}


@pytest.fixture
def live(tmp_path, service_workspace, redis_url):
    other = write_workspace(
        tmp_path / "other", {".strom/o.yaml": "tasks:\n  t:\n    flow: { s: { type: script, script: 'true' } }\n"}
    )
    folder = service_workspace(WORKSPACE)
    spaces = json.dumps({"local": {"folder": str(folder)}, "other": {"folder": str(other)}})
    with serving(make_config(folder, redis_url, STROM_WORKSPACES=spaces)) as server:
        # the workers tell steps where the API is: this server's port, known once it listens
        config = make_config(folder, redis_url, STROM_WORKSPACES=spaces, STROM_PUBLIC_URL=server.url)
        with stack(config) as service:
            yield service, server


def _log(service, run_id):
    return [line.text for line in service.logs.read(run_id) if line.stream == "stdout"]


def test_a_step_runs_the_cli_and_the_client_with_its_runs_token(live):
    service, server = live
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    run_id = requests.post(
        f"{server.url}/api/workspaces/local/tasks/orchestrate/execute", json={}, headers=admin
    ).json()["id"]
    state = wait_for(
        lambda: (s := service.runs.load(run_id)).status in (RunStatus.WAITING, RunStatus.FAILED) and s,
        timeout=60,
        what="the step",
    )
    assert state.status is RunStatus.WAITING, (state.steps["call"].error, [x.text for x in service.logs.read(run_id)])
    log = _log(service, run_id)
    assert log[0] == "token: ***", "the token is masked like a secret"
    assert [line.replace(" ", "") for line in log[1:]] == ['"task":"child"', '"status":"running"'], log
    [child] = service.runs.list(RunFilter(task="child"), limit=5).runs
    assert child.event["actor"] == f"run:{run_id}" and child.inputs == {"who": "parent"}

    # the CLI and runner.client as a step uses them: STROM_URL, STROM_TOKEN and STROM_WORKSPACE_NAME set
    env = {"STROM_URL": server.url, "STROM_TOKEN": service.run_tokens.issue(run_id), "STROM_WORKSPACE_NAME": "local"}
    cli = CliRunner().invoke(main, ["trigger", "child", "-i", "who=cli", "-f"], env=env, catch_exceptions=False)
    assert cli.exit_code == 0 and "child for cli" in cli.output, cli.output
    listed = CliRunner().invoke(main, ["runs", "--task", "child", "--json"], env=env, catch_exceptions=False)
    assert listed.exit_code == 0 and len(json.loads(listed.output)["runs"]) == 2, listed.output

    token = {"Authorization": f"Bearer {env['STROM_TOKEN']}"}
    assert requests.get(f"{server.url}/api/workspaces/local/tasks", headers=token).status_code == 200
    elsewhere = requests.post(f"{server.url}/api/workspaces/other/tasks/t/execute", json={}, headers=token)
    assert elsewhere.status_code == 403 and "works only in workspace 'local'" in elsewhere.text
    assert requests.get(f"{server.url}/api/runs", headers=token).status_code == 403, "listings name the workspace"
    assert requests.get(f"{server.url}/api/runs?workspace=other", headers=token).status_code == 403
    approve = requests.post(
        f"{server.url}/api/runs/{run_id}/steps/wait/approve", json={"approved": True}, headers=token
    )
    assert approve.status_code == 403 and "not approve" in approve.text, "a run cannot approve its own gate"
    assert requests.get(f"{server.url}/api/events", headers=token).status_code == 403
    assert requests.get(f"{server.url}/api/events?workspace=local", headers=token).status_code == 200
    assert requests.get(f"{server.url}/api/processes", headers=token).status_code == 403
    forged = service.run_tokens.issue(run_id)[:-4] + "AAAA"
    assert (
        requests.get(
            f"{server.url}/api/workspaces/local/tasks", headers={"Authorization": f"Bearer {forged}"}
        ).status_code
        == 401
    )

    requests.post(f"{server.url}/api/runs/{run_id}/cancel", headers=admin)
    wait_for(lambda: service.runs.load(run_id).status.terminal, what="the cancel")
    ended = requests.get(f"{server.url}/api/workspaces/local/tasks", headers=token)
    assert ended.status_code == 401 and "has ended" in ended.text


def test_without_api_a_step_gets_no_url_or_token_and_untrusted_steps_never_do(live):
    service, server = live
    admin = {"Authorization": f"Bearer {TOKENS['admin']}"}
    run_id = requests.post(f"{server.url}/api/workspaces/local/tasks/plain/execute", json={}, headers=admin).json()[
        "id"
    ]
    wait_for(lambda: service.runs.load(run_id).status.terminal, what="the run")
    assert _log(service, run_id) == ["url=none token=none"]

    from runner.engine.work import StepWork
    from runner.service.worker import Worker

    class Logs:
        def __init__(self):
            self.said = []

        def line(self, stream, text):
            self.said.append(text)

    worker = Worker.__new__(Worker)
    worker.service, worker.config = service, service.config
    work = StepWork(job_id="r1", step="s", attempt=1, kind="script", workspace="local", api=True, untrusted=True)
    logs = Logs()
    assert worker._with_api(work, logs) == work and "untrusted" in logs.said[0]
    given = worker._with_api(replace(work, untrusted=False), logs)
    assert given.env["STROM_TOKEN"] in given.mask and given.env["STROM_URL"] == service.config.public_url
