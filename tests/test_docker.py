"""Steps in containers on the real Docker engine: scripts with the commit read-only at /workspace,
images run as they are, live logs, OUTPUT, exit codes, timeouts and cancels that leave no
container behind, the reaper, and clear failures for missing images and unreachable engines."""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner
from docker_env import IMAGE, busybox_image, docker_client, strom_containers
from service_env import TOKENS, make_config, serving, stack, wait_for

from runner.cli import main
from runner.engine import Cancel, RunStatus, StepStatus
from runner.service.worker import Worker

WORKSPACE = {
    "data/VERSION": "2.5\n",
    "tools/report.sh": 'echo "report for $1"; echo "OUTPUT: {\\"args\\": \\"$*\\"}"\n',
    ".strom/ci.yaml": f"""
    tasks:
      check:
        flow:
          inspect:
            type: script
            runner: docker
            image: {IMAGE}
            script: |
              echo "in $(pwd) as $(id -u)"
              echo "version $(cat data/VERSION)"
              if touch /workspace/new-file 2>/dev/null; then echo "wrote the workspace"; exit 9; fi
              echo "the workspace is read-only"
              printf '## Inspected\\n\\nwith %s\\n' "$API_TOKEN" > "$STROM_SUMMARY"
              echo "OUTPUT: {{\\"version\\": \\"$(cat data/VERSION | tr -d '\\n')\\", \\"token\\": \\"$API_TOKEN\\"}}"
            env: {{ API_TOKEN: "{{{{ secret.api_token }}}}" }}
          report:
            type: script
            runner: docker
            source: tools/report.sh
            args: ["{{{{ steps.inspect.output.version }}}}", "final"]
            depends_on: [inspect]
      image:
        flow:
          as-is:
            type: docker
            image: {IMAGE}
            entrypoint: ["/bin/sh", "-c"]
            command: ['echo "hello $WHO"; echo "OUTPUT: {{\\"who\\": \\"$WHO\\"}}"; echo "- as is" > "$STROM_SUMMARY"']
            env: {{ WHO: docker }}
          failing: {{ type: docker, image: "{IMAGE}", cmd: "sh -c 'echo broken >&2; exit 3'" }}
      slow:
        flow:
          wait:
            type: script
            runner: docker
            image: {IMAGE}
            script: 'echo "started"; sleep 30; echo "never"'
      bounded:
        flow:
          wait: {{ type: script, runner: docker, image: "{IMAGE}", script: "echo begin; sleep 30", timeout: 1s }}
      missing:
        flow:
          pull: {{ type: docker, image: "strom-test/not-there:1" }}
          absent: {{ type: docker, image: "{IMAGE}", command: [/no/such/tool] }}
      default-image:
        flow:
          run: {{ type: script, runner: docker, script: "echo from the runner image" }}
      stateful:
        flow:
          count:
            type: script
            runner: docker
            image: {IMAGE}
            script: |
              n=$(( $(cat "$STATE_DIR/n" 2>/dev/null || echo 0) + 1 ))
              echo $n > "$STATE_OUT_DIR/n"
              echo "run $n" > "$ARTIFACTS_DIR/note.txt"
              echo "STATE: {{\\"n\\": $n, \\"token\\": \\"$API_TOKEN\\"}}"
              echo "OUTPUT: {{\\"n\\": $n, \\"seen\\": {{{{ state.n | default(value=0) }}}}}}"
            env: {{ API_TOKEN: "{{{{ secret.api_token }}}}" }}
    """,
}


@pytest.fixture(scope="module")
def engine():
    client = docker_client()
    busybox_image(client)
    return client


def docker_settings(**extra) -> str:
    return json.dumps({"network": "none", "pull": "never", "runner_image": IMAGE, **extra})


@pytest.fixture
def live(engine, service_workspace, redis_url):
    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_DOCKER=docker_settings(),
        STROM_SECRET_API_TOKEN="t0ps3cr3t-value",
    )
    with stack(config, abilities=("docker",)) as service, serving(config, service) as server:
        yield service, server


def start(server, task: str) -> str:
    answer = requests.post(
        f"{server.url}/api/workspaces/local/tasks/{task}/execute",
        json={},
        headers={"Authorization": f"Bearer {TOKENS['admin']}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def finished(service, run_id):
    return wait_for(
        lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, timeout=60, what=f"run {run_id}"
    )


def lines(service, run_id, step=None):
    return [line.text for line in service.logs.read(run_id) if step is None or line.step == step]


def test_a_script_runs_in_the_image_with_the_commit_read_only_at_workspace(live, engine):
    service, server = live
    state = finished(service, start(server, "check"))
    assert state.status is RunStatus.SUCCEEDED, state.steps["inspect"].error
    inspect = lines(service, state.id, "inspect")
    assert inspect[:3] == ["in /workspace as 65534", "version 2.5", "the workspace is read-only"]
    assert state.steps["inspect"].output == {"version": "2.5", "token": "***"}, "outputs are stored masked"
    assert state.steps["inspect"].summary == "## Inspected\n\nwith ***", "and so are summaries"
    shown = requests.get(
        f"{server.url}/api/runs/{state.id}", headers={"Authorization": f"Bearer {TOKENS['viewer']}"}, timeout=10
    ).json()
    assert shown["steps"][0]["output"] == {"version": "2.5", "token": "***"}, "and are shown masked"
    assert "t0ps3cr3t-value" not in json.dumps(lines(service, state.id))
    assert lines(service, state.id, "report")[0] == "report for 2.5"
    assert state.steps["report"].output == {"args": "2.5 final"}
    assert strom_containers(engine, strom_run=state.id) == [], "containers are removed when their step ends"


def test_task_state_and_artifacts_of_steps_in_containers(live, engine):
    service, server = live
    outputs = []
    for _ in range(2):
        state = finished(service, start(server, "stateful"))
        assert state.status is RunStatus.SUCCEEDED, state.steps["count"].error
        outputs.append(state.steps["count"].output)
    assert outputs == [{"n": 1, "seen": 0}, {"n": 2, "seen": 1}], "the container's user wrote and read the files"
    assert service.task_states.latest("local", "stateful")["data"] == {"n": 2, "token": "***"}, "kept masked"
    kept = state.steps["count"].artifacts
    assert [(a["name"], a["size"]) for a in kept] == [("note.txt", len("run 2\n"))]
    with service.objects.open(kept[0]["key"])[0] as stored:
        assert stored.read() == b"run 2\n", "the container's user wrote the artifact"


def test_an_image_runs_as_it_is_and_its_exit_code_decides(live, engine):
    service, server = live
    state = finished(service, start(server, "image"))
    assert state.steps["as-is"].status is StepStatus.SUCCEEDED
    assert lines(service, state.id, "as-is") == ["hello docker", 'OUTPUT: {"who": "docker"}']
    assert state.steps["as-is"].output == {"who": "docker"}
    assert state.steps["as-is"].summary == "- as is", "an image of one's own gets $STROM_SUMMARY too"
    failing = state.steps["failing"]
    assert (failing.status, failing.error, failing.exit_code) == (StepStatus.FAILED, "exit code 3", 3)
    assert lines(service, state.id, "failing") == ["broken"]


def test_logs_stream_live_and_cancel_and_timeout_leave_no_container(live, engine):
    service, server = live
    run_id = start(server, "slow")
    wait_for(lambda: "started" in lines(service, run_id), timeout=30, what="the first line while it runs")
    [container] = strom_containers(engine, strom_run=run_id)
    installation = service.redis.get("strom:installation")
    assert {k: v for k, v in container.labels.items() if k.startswith("strom.")} == {
        "strom.managed": "1",
        "strom.run": run_id,
        "strom.step": "wait",
        "strom.attempt": "1",
        "strom.worker": "test-worker-0",
        "strom.installation": installation,
    }
    assert container.name == f"strom-{installation}-{run_id}-wait-1"
    assert container.attrs["HostConfig"]["NetworkMode"] == "none"
    assert service.runs.load(run_id).steps["wait"].status is StepStatus.RUNNING
    service.orchestrator.apply(run_id, Cancel("enough", by="test"))
    assert finished(service, run_id).status is RunStatus.CANCELLED
    wait_for(lambda: strom_containers(engine, strom_run=run_id) == [], what="the cancelled step's container to go")
    assert "never" not in lines(service, run_id)

    bounded = finished(service, start(server, "bounded"))
    step = bounded.steps["wait"]
    assert (step.status, step.error) == (StepStatus.TIMED_OUT, "timed out after 1s")
    assert lines(service, bounded.id, "wait")[0] == "begin"
    assert strom_containers(engine, strom_run=bounded.id) == []


def test_a_missing_image_fails_the_step_saying_which(live, engine):
    service, server = live
    missing = finished(service, start(server, "missing"))
    assert missing.steps["pull"].error == (
        "image 'strom-test/not-there:1' is not on the Docker engine and the pull "
        "policy is never: load it there (docker pull / docker load) or set "
        "docker.pull to if-missing"
    )
    absent = missing.steps["absent"].error
    assert absent.startswith("Docker could not start the container: ") and "/no/such/tool" in absent
    assert strom_containers(engine, strom_run=missing.id) == []


def test_an_unreachable_engine_fails_the_step_and_the_worker_refuses_the_ability(engine, service_workspace, redis_url):
    config = make_config(
        service_workspace(WORKSPACE), redis_url, STROM_DOCKER=docker_settings(host="tcp://127.0.0.1:9")
    )
    with stack(config, abilities=("docker",), scheduler=True) as other, serving(config, other) as other_server:
        unreachable = finished(other, start(other_server, "image"))
    error = unreachable.steps["as-is"].error
    assert error.startswith("cannot reach the Docker engine at tcp://127.0.0.1:9: ")
    result = CliRunner().invoke(
        main,
        ["worker", "--abilities", "docker"],
        env={"STROM_REDIS_URL": redis_url, "STROM_DOCKER": docker_settings(host="tcp://127.0.0.1:9")},
    )
    assert result.exit_code == 2
    assert "this worker cannot offer 'docker': cannot reach the Docker engine at tcp://127.0.0.1:9" in result.output


def test_the_runner_image_serves_scripts_without_an_image(live):
    service, server = live
    state = finished(service, start(server, "default-image"))
    assert state.status is RunStatus.SUCCEEDED and lines(service, state.id, "run") == ["from the runner image"]


def test_the_reaper_removes_containers_of_its_installations_dead_workers_only(engine, service_workspace, redis_url):
    """Another Strom on the same engine (its own Redis) knows none of this one's workers: it leaves their
    containers alone, as this one leaves its."""
    from runner.runs.service import Service
    from runner.store.workers import installation_id

    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_DOCKER=docker_settings())
    service = Service(config)
    ours = installation_id(service.redis)
    assert installation_id(service.redis) == ours and len(ours) == 12

    def container(worker: str, installation: str | None):
        labels = {"strom.managed": "1", "strom.run": "r-dead", "strom.step": "s", "strom.attempt": "1"}
        labels["strom.worker"] = worker
        if installation is not None:
            labels["strom.installation"] = installation
        return engine.containers.create(IMAGE, ["sleep", "60"], labels=labels, network_mode="none")

    dead = container("killed-worker", ours)
    dead.start()
    from_before = container("killed-too", None)  # from a Strom that did not label its installation yet
    service.redis.set("strom:worker:busy-worker", "1", ex=60)
    alive = container("busy-worker", ours)
    elsewhere = container("a-worker-of-another-strom", "0123456789ab")
    try:
        worker = Worker(service, abilities=("docker",), name="fresh-worker")
        assert sorted(worker.reap(starting=True)) == sorted([dead.name, from_before.name])
        assert sorted(c.name for c in strom_containers(engine, strom_run="r-dead")) == sorted(
            [alive.name, elsewhere.name]
        )
    finally:
        alive.remove(force=True)
        elsewhere.remove(force=True)
