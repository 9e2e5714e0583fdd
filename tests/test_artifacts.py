"""Artifacts: files a succeeded step writes to $ARTIFACTS_DIR are stored, listed and downloadable (API, CLI, the
run page), within limits; kept in the data directory or a real S3-compatible server (moto), also for task state
files and for a worker on another machine."""

from __future__ import annotations

import io
import tarfile
import threading
import time

import boto3
import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from service_env import TOKENS, free_port, make_config, remote_cli, serving, signed_in, stack, wait_for

from runner.engine import RunStatus
from runner.executors.outfiles import artifact_name_problem
from runner.runs.service import Service
from runner.service.retention import Retention
from runner.service.worker import Worker
from runner.store import RunFilter
from runner.store.objects import artifact_object

ADMIN = {"Authorization": f"Bearer {TOKENS['admin']}"}
VIEWER = {"Authorization": f"Bearer {TOKENS['viewer']}"}

WORKSPACE = {
    ".strom/report.yaml": """
    actions:
      announce:
        type: script
        input: { text: { type: string } }
        script: echo "announce {{ input.text }}"
    tasks:
      report:
        on_success:
          - action: announce
            input:
              text: "{% for a in hook.artifacts %}{{ a.step_name }}:{{ a.name }}:{{ a.size_bytes }}:{{ a.url }} {% endfor %}"
        flow:
          build:
            type: script
            script: |
              mkdir -p "$ARTIFACTS_DIR/reports"
              echo '<script>alert(1)</script>' > "$ARTIFACTS_DIR/report.html"
              echo "quarter one" > "$ARTIFACTS_DIR/reports/q1.txt"
              printf '\\211PNG' > "$ARTIFACTS_DIR/chart.png"
              : > "$ARTIFACTS_DIR/empty.log"
              ln -s /etc/passwd "$ARTIFACTS_DIR/passwd"
              touch "$ARTIFACTS_DIR/$(printf 'bad\\tname')"
              echo "STATE: {\\"built\\": true}"
              echo built > "$STATE_OUT_DIR/marker"
          broken:
            depends_on: [build]
            continue_on_failure: true
            type: script
            script: |
              echo "never kept" > "$ARTIFACTS_DIR/partial.txt"
              exit 3
      big:
        flow:
          write:
            type: script
            script: |
              head -c 3000 /dev/zero > "$ARTIFACTS_DIR/small.bin"
              head -c 5000 /dev/zero > "$ARTIFACTS_DIR/large.bin"
    """
}


def _run(server, task: str) -> str:
    response = requests.post(f"{server.url}/api/workspaces/local/tasks/{task}/execute", json={}, headers=ADMIN)
    assert response.status_code == 201, response.text
    return response.json()["id"]


def _ended(service, run_id: str):
    return wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=30, what=run_id)


def _check_report_run(service, server, run_id: str) -> dict[str, dict]:
    state = _ended(service, run_id)
    assert state.status is RunStatus.SUCCEEDED, {n: r.error for n, r in state.steps.items()}
    assert state.steps["broken"].artifacts is None, "a failed step's files are not kept"
    listed = requests.get(f"{server.url}/api/runs/{run_id}/artifacts", headers=VIEWER).json()["artifacts"]
    by_name = {a["name"]: a for a in listed}
    assert sorted(by_name) == ["chart.png", "empty.log", "report.html", "reports/q1.txt"], "no link, no bad name"
    assert by_name["reports/q1.txt"]["size"] == len("quarter one\n") and by_name["empty.log"]["size"] == 0

    text = requests.get(f"{server.url}{by_name['reports/q1.txt']['url']}", headers=VIEWER)
    assert text.status_code == 200 and text.content == b"quarter one\n"
    assert text.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert (
        text.headers["Content-Disposition"].startswith("inline") and text.headers["X-Content-Type-Options"] == "nosniff"
    )
    html = requests.get(f"{server.url}{by_name['report.html']['url']}", headers=VIEWER)
    assert html.headers["Content-Type"] == "application/octet-stream", "HTML is never rendered on Strom's origin"
    assert html.headers["Content-Disposition"] == "attachment; filename*=UTF-8''report.html"
    assert "sandbox" in html.headers["Content-Security-Policy"]
    image = requests.get(f"{server.url}{by_name['chart.png']['url']}", headers=VIEWER)
    assert image.headers["Content-Type"] == "image/png" and image.content == b"\x89PNG"
    missing = requests.get(f"{server.url}/api/runs/{run_id}/artifacts/build/nope.txt", headers=VIEWER)
    assert missing.status_code == 404

    log = [line.text for line in service.logs.read(run_id, step="build") if line.stream == "strom"]
    assert any(line.startswith("not kept as an artifact: 'bad\\tname'") for line in log), log
    assert "kept 4 artifact(s), 42 B" in log
    shown = requests.get(f"{server.url}/api/runs/{run_id}", headers=VIEWER).json()
    assert [a["name"] for a in shown["steps"][0]["artifacts"]] == sorted(by_name)
    return by_name


def test_a_succeeded_steps_artifacts_are_kept_listed_and_served_safely(service_workspace, redis_url, tmp_path):
    config = make_config(service_workspace(WORKSPACE), redis_url)
    with stack(config) as service, serving(config, service) as server:
        run_id = _run(server, "report")
        _check_report_run(service, server, run_id)

        hook = wait_for(
            lambda: next(iter(service.runs.list(RunFilter(workspace="local", source="hook")).runs), None), what="hook"
        )
        announced = " ".join(line.text for line in service.logs.read(_ended(service, hook.id).id))
        assert (
            f"build:reports/q1.txt:12:http://127.0.0.1:8080/api/runs/{run_id}/artifacts/build/reports/q1.txt"
            in announced
        )

        code, out = remote_cli(server, "artifacts", run_id)
        assert code == 0 and "reports/q1.txt" in out and "build" in out
        target = tmp_path / "q1.txt"
        code, _ = remote_cli(server, "artifacts", run_id, "reports/q1.txt", "-o", str(target))
        assert code == 0 and target.read_text() == "quarter one\n"
        code, out = remote_cli(server, "artifacts", run_id, "nothing.txt")
        assert code == 1 and "kept no artifact 'nothing.txt'" in out

        page = signed_in(server, "viewer").get(f"{server.url}/runs/{run_id}", timeout=10).text
        assert f'href="/api/runs/{run_id}/artifacts/build/reports/q1.txt"' in page

        state = service.runs.load(run_id)
        kept = [service.objects.path(a["key"]) for a in state.steps["build"].artifacts]
        assert len(kept) == 4 and all(path.is_file() for path in kept)
        Retention(service).delete_files([state])
        assert not any(path.exists() for path in kept), "deleted with the run"


def test_limits_fail_the_step_saying_which_and_keep_nothing(service_workspace, redis_url):
    config = make_config(
        service_workspace(WORKSPACE), redis_url, STROM_ARTIFACTS='{"max_file_size": 4000, "max_run_size": 7000}'
    )
    with stack(config) as service, serving(config, service) as server:
        state = _ended(service, _run(server, "big"))
        write = state.steps["write"]
        assert state.status is RunStatus.FAILED and write.artifacts is None
        assert write.error == (
            "storing the artifacts failed: artifact large.bin is 4.9 KiB, over artifacts.max_file_size (3.9 KiB)"
        )
        assert service.redis.get(f"strom:artifactbytes:{state.id}") in (None, "0")

    small = make_config(service_workspace(WORKSPACE), redis_url, STROM_ARTIFACTS='{"max_run_size": 7000}')
    with stack(small) as service, serving(small, service) as server:
        state = _ended(service, _run(server, "big"))
        assert "over artifacts.max_run_size (6.8 KiB) with small.bin" in state.steps["write"].error
        large = service.objects.path(artifact_object(state.id, "write", 1, "large.bin"))
        assert not large.exists(), "large.bin was stored first, and deleted again"
        assert service.redis.get(f"strom:artifactbytes:{state.id}") == "0"


@pytest.fixture
def s3():
    """A real S3-compatible server (moto's), with a bucket."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    client.create_bucket(Bucket="strom-test")
    try:
        yield endpoint, client
    finally:
        server.stop()


def _s3_config(endpoint: str) -> str:
    return (
        f'{{"type": "s3", "bucket": "strom-test", "prefix": "ci/", "endpoint": "{endpoint}", '
        '"region": "us-east-1", "access_key": "k", "secret_key": "s"}'
    )


def test_artifacts_and_state_files_live_in_an_s3_bucket_also_from_a_remote_worker(
    service_workspace, redis_url, s3, tmp_path
):
    endpoint, client = s3
    root = service_workspace(WORKSPACE)
    token = "worker-token-0123456789abcdef"
    config = make_config(root, redis_url, STROM_STORAGE=_s3_config(endpoint), STROM_WORKERS__TOKEN=token)
    with stack(config, workers=0) as service, serving(config, service) as server:
        remote = make_config(
            root,
            redis_url,
            STROM_WORKERS__TOKEN=token,
            STROM_WORKERS__SERVER_URL=server.url,
            STROM_DATA_DIR=str(tmp_path / "elsewhere"),
        )
        worker = Worker(Service(remote), name="remote-worker")
        worker.start()
        try:
            run_id = _run(server, "report")
            by_name = _check_report_run(service, server, run_id)
        finally:
            worker.request_stop()
            worker.wait(5)
        names = sorted(o["Key"] for o in client.list_objects_v2(Bucket="strom-test")["Contents"])
        snapshot = service.task_states.latest("local", "report")
        assert f"ci/{snapshot['files']}" in names and len(names) == 5, names
        body = client.get_object(Bucket="strom-test", Key=f"ci/{snapshot['files']}")["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            assert tar.extractfile("marker").read() == b"built\n"
        files = requests.get(
            f"{server.url}/api/workspaces/local/tasks/report/state/{snapshot['id']}/files", headers=ADMIN
        )
        assert files.status_code == 200 and files.content == body
        assert not list((tmp_path / "elsewhere").glob("objects/**/*")), "the remote worker kept nothing itself"
        assert by_name["chart.png"]["size"] == 4


def test_storage_settings_are_checked_with_the_fix(service_workspace, redis_url):
    from runner.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        make_config(service_workspace(WORKSPACE), redis_url, STROM_STORAGE='{"type": "s3"}')
    assert "storage: type s3 needs a bucket" in str(raised.value)
    with pytest.raises(ConfigError) as raised:
        make_config(service_workspace(WORKSPACE), redis_url, STROM_STORAGE='{"type": "gcs", "bucket": "x"}')
    assert "storage" in str(raised.value) and "s3" in str(raised.value)


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=300))
def test_artifact_names_are_checked_without_raising(name):
    problem = artifact_name_problem(name)
    if problem is None:
        assert "\x00" not in name and ".." not in name.split("/") and not name.startswith("/")


def _log_views(server, run_id: str) -> tuple:
    lines = requests.get(f"{server.url}/api/runs/{run_id}/logs", headers=VIEWER).json()
    first = lines["lines"][0]["id"]
    after = requests.get(f"{server.url}/api/runs/{run_id}/logs?after={first}", headers=VIEWER).json()
    step = requests.get(f"{server.url}/api/runs/{run_id}/steps/broken/logs", headers=VIEWER).json()
    text = requests.get(f"{server.url}/api/runs/{run_id}/logs?format=text", headers=VIEWER).text
    events = requests.get(f"{server.url}/api/runs/{run_id}/logs?follow=1", headers=VIEWER, timeout=10).text
    return lines, after, step, text, events


def test_finished_runs_logs_move_to_the_object_storage_and_read_the_same(service_workspace, redis_url, s3):
    endpoint, client = s3
    config = make_config(
        service_workspace(WORKSPACE),
        redis_url,
        STROM_STORAGE=_s3_config(endpoint),
        STROM_LOGS='{"archive_after": "1m"}',
    )
    with stack(config) as service, serving(config, service) as server:
        run_id = _run(server, "report")
        _ended(service, run_id)
        before = _log_views(server, run_id)
        assert "kept 4 artifact(s)" in before[3] and len(before[0]["lines"]) >= 3
        retention = Retention(service)
        assert retention.archive_logs(time.time()) == 0, "not a minute old yet"
        assert retention.archive_logs(time.time() + 61) == 2, "the run and its on_success hook run"
        assert not service.redis.exists(f"strom:log:{run_id}"), "the stream left Redis"
        names = [o["Key"] for o in client.list_objects_v2(Bucket="strom-test", Prefix="ci/logs/")["Contents"]]
        assert len(names) == 2 and all(name.endswith(".jsonl.gz") for name in names)
        assert _log_views(server, run_id) == before, "every view of the log reads the same from the archive"
        kept = client.list_objects_v2(Bucket="strom-test", Prefix="ci/logs/")["Contents"]
        Retention(Service(config)).delete_files([service.runs.load(run_id)])
        left = client.list_objects_v2(Bucket="strom-test", Prefix="ci/logs/")["Contents"]
        assert len(left) == len(kept) - 1, "the run's archived log is deleted with it"


def test_redis_going_away_while_a_step_stores_its_artifacts_loses_nothing(service_workspace, tmp_path, monkeypatch):
    from service_env import RedisServer

    from runner.service.step_artifacts import StepArtifacts

    redis_server = RedisServer(directory=tmp_path, appendonly=True)
    reached, go_on = threading.Event(), threading.Event()
    count = StepArtifacts._count

    refused: list[Exception] = []

    def held_count(self, counter, size):
        if not reached.is_set():
            reached.set()
            assert go_on.wait(20)
        try:
            return count(self, counter, size)
        except Exception as exc:
            refused.append(exc)
            raise

    monkeypatch.setattr(StepArtifacts, "_count", held_count)
    config = make_config(service_workspace(WORKSPACE), redis_server.url)
    try:
        with stack(config) as service, serving(config, service) as server:
            run_id = _run(server, "report")
            assert reached.wait(20), "the step ended and its worker stores its artifacts"
            redis_server.stop()
            go_on.set()  # the worker finds Redis gone, and waits it out
            wait_for(lambda: len(refused) >= 2, timeout=20, what="the worker trying again during the outage")
            redis_server.start()
            state = wait_for(lambda: (s := service.runs.load(run_id)).status.terminal and s, timeout=60, what="end")
            assert state.status is RunStatus.SUCCEEDED, state.steps["build"].error
            assert len(state.steps["build"].artifacts) == 4
            assert service.redis.get(f"strom:artifactbytes:{run_id}") == "42", "counted once"
    finally:
        redis_server.stop()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(["a", "b", "b[0]", ""]), st.text(max_size=40)), max_size=60),
    st.integers(min_value=1, max_value=7),
    st.sampled_from([None, "a", "b"]),
)
def test_an_archived_log_pages_as_the_stream_did(entries, limit, step):
    from runner.store.logs import LogLine, _page_of

    lines = [LogLine(f"{1000 + i}-{i % 3}", s, 1, "stdout", text, float(i)) for i, (s, text) in enumerate(entries)]
    expected = [ln for ln in lines if step is None or ln.step == step or ln.step.startswith(f"{step}[")]
    seen, after = [], "0-0"
    for _ in range(len(lines) + 2):
        page = _page_of(lines, after, step, limit, False, 1 << 20)
        assert len(page.lines) <= limit
        seen += page.lines
        after = page.next
        if not page.more:
            break
    assert seen == expected, "every line once, in order, whatever the page size"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_object_keys_are_refused_unless_strom_writes_them(key):
    from runner.store.objects import ObjectError, check_key

    try:
        assert check_key(key) == key
    except ObjectError:
        return
    assert ".." not in key and not key.startswith("/") and key.split("/")[0] in ("state", "artifacts", "logs")
