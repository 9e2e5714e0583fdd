"""Task state: `STATE:` lines and files in $STATE_OUT_DIR kept per task, seen by the task's next runs as
`{{ state.* }}` and files under $STATE_DIR; through real runs on the service, a remote worker and the API."""

from __future__ import annotations

import io
import json
import os
import tarfile
import threading
from pathlib import Path

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from service_env import TOKENS, make_config, remote_cli, serving, stack, wait_for

from runner.engine import RunStatus
from runner.engine.status import StepStatus
from runner.executors.base import StepResult
from runner.executors.outfiles import MAX_STATE_SIZE, kept_files, prepare_out
from runner.outputs import MAX_STATE_DATA, OutputCollector, merge_state
from runner.runs.service import Service
from runner.service.worker import Worker

ADMIN = {"Authorization": f"Bearer {TOKENS['admin']}"}

WORKSPACE = {
    ".strom/renew.yaml": """
    tasks:
      renew:
        flow:
          check:
            type: script
            script: |
              echo "count before: {{ state.count | default(value=0) }}"
              if [ -f "$STATE_DIR/cert.pem" ]; then echo "had: $(cat "$STATE_DIR/cert.pem")"; fi
              n=$(( {{ state.count | default(value=0) }} + 1 ))
              echo "STATE: {\\"count\\": $n, \\"meta\\": {\\"by\\": \\"check\\"}}"
              echo "STATE: {\\"meta\\": {\\"run\\": \\"$STROM_JOB_ID\\"}}"
              mkdir -p "$STATE_OUT_DIR/certs"
              echo "cert-$n" > "$STATE_OUT_DIR/cert.pem"
              echo "key-$n" > "$STATE_OUT_DIR/certs/key.pem"
              ln -s /etc/passwd "$STATE_OUT_DIR/passwd"
          use:
            depends_on: [check]
            when: "{{ state.count | default(value=0) > 0 }}"
            type: script
            script: |
              echo "OUTPUT: {\\"count\\": {{ state.count }}, \\"by\\": \\"{{ state.meta.by }}\\", \\"cert\\": \\"$(cat "$STATE_DIR/cert.pem")\\", \\"key\\": \\"$(cat "$STATE_DIR/certs/key.pem")\\"}"
      untouched:
        flow:
          look:
            type: script
            script: |
              echo "OUTPUT: {\\"empty\\": {{ not state }}, \\"files\\": \\"$(ls -A "$STATE_DIR" | wc -l)\\"}"
    """
}


def _run(server, task: str) -> str:
    response = requests.post(f"{server.url}/api/workspaces/local/tasks/{task}/execute", json={}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _finished(service, run_id: str):
    state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=30, what=run_id)
    assert state.status is RunStatus.SUCCEEDED, {n: (r.status, r.error) for n, r in state.steps.items()}
    return state


def _members(data: bytes) -> dict[str, bytes | None]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: (tar.extractfile(m).read() if m.isfile() else None) for m in tar.getmembers()}


def test_a_task_keeps_state_for_its_later_steps_and_next_runs(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url, STROM_STATE='{"max_snapshots": 2}')
    with stack(config) as service, serving(config, service) as server:
        first = _finished(service, _run(server, "renew"))
        assert first.steps["use"].output == {"count": 1, "by": "check", "cert": "cert-1", "key": "key-1"}
        second = _finished(service, _run(server, "renew"))
        assert second.steps["use"].output == {"count": 2, "by": "check", "cert": "cert-2", "key": "key-2"}
        log = "\n".join(line.text for line in service.logs.read(second.id, step="check"))
        assert "count before: 1" in log and "had: cert-1" in log

        listed = requests.get(f"{server.url}/api/workspaces/local/tasks/renew/state", headers=ADMIN).json()
        newest = listed["snapshots"][0]
        assert [s["job"] for s in listed["snapshots"]] == [second.id, first.id]
        assert newest["data"] == {"count": 2, "meta": {"by": "check", "run": second.id}} and newest["step"] == "check"
        files = requests.get(f"{server.url}{newest['files']}", headers=ADMIN)
        assert files.status_code == 200 and files.headers["Content-Type"] == "application/gzip"
        members = _members(files.content)
        assert members == {"cert.pem": b"cert-2\n", "certs": None, "certs/key.pem": b"key-2\n"}, "no symlink kept"
        viewer = {"Authorization": f"Bearer {TOKENS['viewer']}"}
        assert requests.get(f"{server.url}{newest['files']}", headers=viewer).status_code == 403

        third = _finished(service, _run(server, "renew"))
        kept = service.task_states.history("local", "renew")
        assert [s["job"] for s in kept] == [third.id, second.id], "max_snapshots: 2"
        first_files = service.objects.path(f"state/{listed['snapshots'][1]['id']}.tar.gz")
        wait_for(lambda: service.task_states.delete_doomed(service.objects) or not first_files.exists(), what="gone")
        assert not first_files.exists() and service.objects.path(kept[1]["files"]).exists()

        other = _finished(service, _run(server, "untouched"))
        assert other.steps["look"].output == {"empty": True, "files": "0"}, "state is per task"

        code, out = remote_cli(server, "state", "renew", "-w", "local")
        assert code == 0 and third.id in out and '"count": 3' in out
        target = Path(config.data_dir) / "state.tar.gz"
        code, out = remote_cli(server, "state", "renew", "-w", "local", "--files", "-o", str(target))
        assert code == 0 and _members(target.read_bytes())["cert.pem"] == b"cert-3\n"


def test_untrusted_runs_neither_see_nor_keep_state(service_workspace, redis_url):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service, serving(config, service) as server:
        trusted = _finished(service, _run(server, "renew"))
        assert trusted.steps["use"].output["count"] == 1
        run_id = _start_untrusted(service, "renew")
        state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=30, what="untrusted")
        assert state.steps["use"].status is StepStatus.SKIPPED, "state.count is not there for a stranger's run"
        log = "\n".join(line.text for line in service.logs.read(run_id, step="check"))
        assert "count before: 0" in log and "had:" not in log
        assert "task state is not kept from a step of an untrusted pull request" in log
        assert [s["job"] for s in service.task_states.history("local", "renew")] == [trusted.id]


def _start_untrusted(service: Service, task: str) -> str:
    from runner.runs.creation import load_definitions, start

    checkout = load_definitions(service, "local")
    return start(service, "local", checkout, task, {}, source="pull_request", trusted=False).id


def test_a_remote_worker_stores_and_reads_state_through_the_web(service_workspace, redis_url, tmp_path):
    root = service_workspace(WORKSPACE)
    config = make_config(root, redis_url, STROM_WORKERS__TOKEN="worker-token-0123456789")
    with stack(config, workers=0) as service, serving(config, service) as server:
        remote = make_config(
            root,
            redis_url,
            STROM_WORKERS__TOKEN="worker-token-0123456789",
            STROM_WORKERS__SERVER_URL=server.url,
            STROM_DATA_DIR=str(tmp_path / "remote-data"),
        )
        worker = Worker(Service(remote), name="remote-worker")
        worker.start()
        try:
            first = _finished(service, _run(server, "renew"))
            second = _finished(service, _run(server, "renew"))
        finally:
            worker.request_stop()
            worker.wait(5)
        assert second.steps["use"].output["cert"] == "cert-2"
        snapshot = service.task_states.latest("local", "renew")
        assert snapshot["job"] == second.id and service.objects.path(snapshot["files"]).is_file()
        assert not list((tmp_path / "remote-data").glob("objects/**/*.tar.gz")), "stored on the server, not here"
        assert first.steps["use"].output["cert"] == "cert-1"
        key = snapshot["files"]
        unauthorised = requests.get(f"{server.url}/api/objects/{key}", headers=ADMIN)
        assert unauthorised.status_code == 401, "the objects are the workers' only"
        bad = requests.put(
            f"{server.url}/api/objects/../../etc/x",
            data=b"x",
            headers={"Authorization": "Bearer worker-token-0123456789"},
        )
        assert bad.status_code in (400, 404)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.text(max_size=300)
        | st.recursive(
            st.none() | st.integers() | st.text(),
            lambda c: st.dictionaries(st.text(max_size=5), c, max_size=4) | st.lists(c, max_size=4),
        ).map(json.dumps),
        max_size=8,
    )
)
def test_state_lines_never_raise_and_merge_objects_only(lines):
    collector = OutputCollector()
    for line in lines:
        collector.feed("STATE: " + line.replace("\n", " "))
    state, problem = collector.state()
    assert state is None or problem is None
    if problem is None and state is not None:
        assert isinstance(state, dict) and len(json.dumps(state)) <= MAX_STATE_DATA


def test_state_lines_deep_merge_and_refuse_what_is_not_an_object():
    collector = OutputCollector()
    for line in ('STATE: {"a": {"x": 1}, "b": 1}', '  STATE: {"a": {"y": 2}, "b": [1]}'):
        collector.feed(line)
    assert collector.state() == ({"a": {"x": 1, "y": 2}, "b": [1]}, None)
    assert merge_state({"a": {"x": 1}}, {"a": 2}) == {"a": 2}
    bad = OutputCollector()
    bad.feed("STATE: [1, 2]")
    assert bad.state() == (None, "a STATE line must be a JSON object, not list: [1, 2]")
    deep = OutputCollector()
    deep.feed("STATE: " + "[" * 100000 + "]" * 100000)
    assert deep.state()[0] is None and "JSON" in deep.state()[1]
    big = OutputCollector()
    big.feed('STATE: {"a": "' + "x" * MAX_STATE_DATA + '"}')
    assert "over 64 KiB" in big.state()[1]


def test_packing_reads_no_link_fifo_or_hard_link_and_stops_at_the_limit(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    prepare_out(out, None)
    state_out = out / "state-out"
    (state_out / "ok.txt").write_text("fine")
    (state_out / "link").symlink_to("/etc/passwd")
    os.mkfifo(state_out / "fifo")
    secret = tmp_path / "secret"
    secret.write_text("not yours")
    os.link(secret, state_out / "hard")
    (state_out / "dir-link").symlink_to(tmp_path)
    logs = _Lines()
    result = kept_files(StepResult(StepStatus.SUCCEEDED, state={"a": 1}), out, logs, untrusted=False)
    try:
        assert _members(Path(result.state_files).read_bytes()) == {"ok.txt": b"fine"}
    finally:
        os.unlink(result.state_files)
    with open(state_out / "big", "wb") as big:
        big.truncate(MAX_STATE_SIZE + 1)
    result = kept_files(StepResult(StepStatus.SUCCEEDED, state={"a": 1}), out, logs, untrusted=False)
    assert result.state_files is None and result.state == {"a": 1}
    assert logs.lines[-1].startswith("the files in $STATE_OUT_DIR are not kept: they are over 50.0 MiB (at big)")
    failed = kept_files(StepResult(StepStatus.FAILED, state={"a": 1}), out, logs, untrusted=False)
    assert failed.state_files is None


class _Lines:
    def __init__(self):
        self.lines: list[str] = []
        self.lock = threading.Lock()

    def line(self, stream: str, text: str) -> None:
        with self.lock:
            self.lines.append(text)


def test_an_archive_cannot_write_outside_the_state_directory(tmp_path):
    def archive(name: str) -> str:
        path = tmp_path / f"{len(name)}.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            info = tarfile.TarInfo(name)
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        return str(path)

    for index, name in enumerate(("../escape", "/abs")):
        out = tmp_path / f"out{index}"
        out.mkdir()
        if name.startswith(".."):
            with pytest.raises(tarfile.TarError):
                prepare_out(out, archive(name))
        else:  # an absolute name lands inside, its slash dropped
            prepare_out(out, archive(name))
            assert (out / "state" / "abs").read_bytes() == b"x"
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()


def test_strom_run_passes_state_between_the_steps_of_its_run_and_leaves_no_file(workspace):
    from conftest import run_local

    root = workspace(
        {
            ".strom/t.yaml": """
        tasks:
          t:
            flow:
              a:
                type: script
                script: |
                  echo hi > "$STATE_OUT_DIR/f"
                  echo 'STATE: {"x": 5}'
              b:
                depends_on: [a]
                type: script
                script: |
                  echo "OUTPUT: {\\"x\\": {{ state.x }}, \\"f\\": \\"$(cat "$STATE_DIR/f")\\"}"
        """
        }
    )
    outcome, _ = run_local(root, "t")
    assert outcome.state.steps["b"].output == {"x": 5, "f": "hi"}
    kept = outcome.state.task_state["files"]
    assert kept and not Path(kept).exists(), "the run's archives are removed when it ends"


def test_the_tasks_page_shows_the_newest_state_and_its_files_to_operators(service_workspace, redis_url):
    from service_env import signed_in

    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service, serving(config, service) as server:
        run = _finished(service, _run(server, "renew"))
        operator = signed_in(server, "operator")
        page = operator.get(f"{server.url}/tasks?workspace=local", timeout=10).text
        block = page[page.index('data-state-of="renew"') :]
        block = block[: block.index("</details>")]
        assert f'run <a href="/runs/{run.id}">{run.id}</a>' in block and '"count": 1' in block
        link = block[block.index('href="/api/') + 6 :].split('"')[0]
        assert operator.get(f"{server.url}{link}", timeout=10).headers["Content-Type"] == "application/gzip"
        viewer_page = signed_in(server, "viewer").get(f"{server.url}/tasks?workspace=local", timeout=10).text
        assert "operators may download them" in viewer_page and "/state/" not in viewer_page
        assert 'data-state-of="untouched"' not in page


def test_a_report_delivered_twice_keeps_its_state_once(service_workspace, redis_url):
    from runner.engine import StepFinished, StepStarted
    from runner.errors import EngineError

    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config, workers=0) as service, serving(config, service) as server:
        run_id = _run(server, "renew")
        wait_for(lambda: service.runs.load(run_id).steps["check"].status is StepStatus.QUEUED, what="queued")
        service.orchestrator.apply(run_id, StepStarted("check", 1, worker="by-hand"))
        report = StepFinished(
            "check",
            1,
            StepStatus.SUCCEEDED,
            state={"id": "a" * 32, "data": {"count": 1, "meta": {"by": "hand"}}, "size": 0},
        )
        service.orchestrator.apply(run_id, report)
        with pytest.raises(EngineError):  # a report an outbox delivers again after an outage
            service.orchestrator.apply(run_id, report)
        assert [s["data"] for s in service.task_states.history("local", "renew")] == [
            {"count": 1, "meta": {"by": "hand"}}
        ]
        queued = service.runs.load(run_id)
        assert queued.task_state["data"]["meta"] == {"by": "hand"}
        assert queued.steps["use"].status is StepStatus.QUEUED, "its `when` read the state the report carried"


def test_an_uploaded_snapshot_bootstraps_the_next_run_and_bad_uploads_are_refused(
    service_workspace, redis_url, tmp_path
):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    cert = tmp_path / "cert.pem"
    cert.write_text("seeded\n")
    with stack(config) as service, serving(config, service) as server:
        code, out = remote_cli(server, "state", "renew", "--upload", str(cert), "--set", "count=41")
        assert code == 0 and "with files" in out, out
        run = _finished(service, _run(server, "renew"))
        log = "\n".join(line.text for line in service.logs.read(run.id, step="check"))
        assert "count before: 41" in log and "had: seeded" in log, "a run starts from the uploaded snapshot"

        code, _ = remote_cli(server, "state", "renew", "--set", "extra=yes", "--mode", "merge")
        merged = service.task_states.latest("local", "renew")
        assert code == 0 and merged["data"]["extra"] == "yes" and merged["data"]["count"] == 42
        assert merged["by"] == "admin" and merged["files"], "merge keeps the newest snapshot's files"

        url = f"{server.url}/api/workspaces/local/tasks/renew/state"
        garbage = requests.post(url, data=b"not a tar", headers=ADMIN)
        assert garbage.status_code == 422 and "not a gzipped tar" in garbage.text
        evil = io.BytesIO()
        with tarfile.open(fileobj=evil, mode="w:gz") as tar:
            info = tarfile.TarInfo("../../escape")
            info.size = 1
            tar.addfile(info, io.BytesIO(b"x"))
        assert requests.post(url, data=evil.getvalue(), headers=ADMIN).status_code == 422
        assert requests.post(url, params={"data": "[1]"}, headers=ADMIN).status_code == 400
        assert requests.post(url, params={"mode": "sideways"}, headers=ADMIN).status_code == 422
        viewer = {"Authorization": f"Bearer {TOKENS['viewer']}"}
        assert requests.post(url, params={"data": "{}"}, headers=viewer).status_code == 403
        missing = requests.post(f"{server.url}/api/workspaces/local/tasks/nope/state", headers=ADMIN)
        assert missing.status_code == 404
        assert service.task_states.latest("local", "renew")["id"] == merged["id"], "nothing refused was kept"
