"""`git push` to a hosted workspace with the stock git client, against a live server."""

from __future__ import annotations

import gzip
import importlib
import json
import os
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
from git_env import commit, git, head, init_repo
from service_env import TOKENS, live_stack, make_config, wait_for

from runner.engine import RunStatus
from runner.gitops.polling import poll_workspace
from runner.store import keys

VALID = """
    tasks:
      build:
        flow:
          show:
            type: script
            script: |
              echo "sha=$STROM_SHA branch=$STROM_BRANCH ref=$STROM_REF"
              echo "readme=$(cat README.md)"
              echo "title={{ git.title }} kind={{ event.kind }}"
              test -w README.md && echo writable || echo read-only
    triggers:
      on-push: { type: push, task: build, branches: [main] }
    """

TAGS = """
      on-tag: { type: tag, task: build, tags: ["v*"] }
    """

INVALID = """
    tasks:
      build:
        flow:
          show:
            type: script
            script: echo hi
            dependz_on: []
    """


@pytest.fixture
def hosted(tmp_path, service_workspace, redis_url):
    config = make_config(
        service_workspace({".strom/x.yaml": VALID}),
        redis_url,
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_WORKSPACES=json.dumps({"site": {"hosted": True}}),
    )
    with live_stack(config) as pair:
        yield pair


receiver = importlib.import_module("webhooks.receivers.git")  # the package's `git` is the blueprint


def remote(server, role="operator") -> str:
    return f"http://strom:{TOKENS[role]}@127.0.0.1:{server.port}/git/site.git"


def events(service):
    return service.repo_events.list("site")


def test_invalid_strom_is_refused_with_file_line_column_then_a_valid_push_runs_on_that_commit(hosted, tmp_path):
    service, server = hosted
    repo = init_repo(tmp_path / "src")
    commit(repo, {"README.md": "first\n", ".strom/ci.yaml": INVALID}, "broken pipeline")
    refused = git(repo, "push", remote(server), "main", check=False)
    assert refused.returncode != 0
    assert (
        "remote: .strom/ci.yaml:7:9: error: task 'build', step 'show': unknown key 'dependz_on'; "
        'did you mean "depends_on"?'
    ) in refused.stderr
    assert "remote: strom: push of refs/heads/main refused: 1 problem(s) in .strom/" in refused.stderr
    assert events(service) == []

    sha = commit(repo, {"README.md": "hello from git\n", ".strom/ci.yaml": VALID}, "Fix the pipeline")
    pushed = git(repo, "push", remote(server), "main")
    assert "remote: .strom" not in pushed.stderr
    [record] = wait_for(
        lambda: [e for e in events(service) if e["status"] != "queued"] or None, what="the push to be processed"
    )
    assert (record["status"], record["event"]["kind"], record["event"]["sha"]) == ("done", "push", sha)
    [run_id] = record["runs"]
    state = wait_for(lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, what="the run")
    assert state.status is RunStatus.SUCCEEDED, state.error
    assert (state.commit, state.trigger, state.source, state.event["actor"]) == (sha, "on-push", "git", "operator")
    lines = [line.text for line in service.logs.read(run_id)]
    assert f"sha={sha} branch=main ref=refs/heads/main" in lines
    assert "readme=hello from git" in lines
    assert "title=Fix the pipeline kind=push" in lines
    assert "read-only" in lines


def test_push_option_skip_tags_and_deletes_become_events_and_polling_respects_the_skip(hosted, tmp_path):
    service, server = hosted
    site = service.config.workspaces["site"]
    repo = init_repo(tmp_path / "src")
    sha = commit(repo, {"README.md": "x\n", ".strom/ci.yaml": VALID + TAGS})
    assert poll_workspace(service, site) == [], "the first poll records the heads"
    git(repo, "push", "-o", "strom.skip", remote(server), "main")
    [skipped] = events(service)
    assert (skipped["status"], skipped["reason"], skipped["event"]["sha"]) == (
        "ignored",
        "pushed with -o strom.skip",
        sha,
    )
    assert poll_workspace(service, site) == [], "a skipped push stays skipped when the poll sees it"
    git(repo, "tag", "-a", "v1.0", "-m", "release 1.0", sha)
    tag_object = head(repo, "v1.0")
    git(repo, "push", remote(server), "v1.0", "main:topic")
    git(repo, "push", remote(server), ":topic")
    done = wait_for(
        lambda: (
            (found := events(service)) and len(found) == 4 and all(e["status"] != "queued" for e in found) and found
        ),
        what="four processed events",
    )
    by_ref = {(e["event"]["kind"], e["event"]["ref"]): e for e in done}
    assert by_ref[("push", "refs/heads/topic")]["reason"] == "trigger 'on-push': branch 'topic' is not in [main]"
    assert by_ref[("delete", "refs/heads/topic")]["reason"] == "branch 'topic' deleted: no trigger runs on deletions"
    tagged = by_ref[("tag", "refs/tags/v1.0")]
    assert tagged["status"] == "done" and tagged["event"]["sha"] == tag_object != sha
    state = wait_for(lambda: (s := service.runs.load(tagged["runs"][0])) and s.status.terminal and s, what="the run")
    assert (state.status, state.commit, state.git["tag"]) == (RunStatus.SUCCEEDED, sha, "v1.0"), (
        "an annotated tag runs its commit"
    )
    assert f"sha={sha} branch= ref=refs/tags/v1.0" in [line.text for line in service.logs.read(state.id)]


def test_a_poll_while_a_push_is_in_flight_leaves_that_push_to_the_push(hosted, tmp_path, monkeypatch):
    """git moves the branch before Strom stores the push's events: a poll in between must not store a
    second event, nor run what was pushed with -o strom.skip. A push whose server died is reconciled
    by the poll once given up."""
    from runner.gitops import polling

    service, server = hosted
    site = service.config.workspaces["site"]
    bare = service.repos.hosted.ensure("site")
    repo = init_repo(tmp_path / "src")
    sha = commit(repo, {"README.md": "x\n", ".strom/ci.yaml": VALID})
    assert poll_workspace(service, site) == [], "the first poll records the heads"
    reached, release = threading.Event(), threading.Event()
    store = receiver._store_push

    def held(*args):
        reached.set()
        release.wait(30)
        return store(*args)

    monkeypatch.setattr(receiver, "_store_push", held)
    pusher = threading.Thread(target=git, args=(repo, "push", "-o", "strom.skip", remote(server), "main"))
    pusher.start()
    try:
        assert reached.wait(30), "the push reached the point of storing its events"
        assert git(bare, "rev-parse", "refs/heads/main").stdout.strip() == sha, "git has moved the branch"
        assert poll_workspace(service, site) == [], "the push is in flight"
    finally:
        release.set()
        pusher.join(30)
    [skipped] = events(service)
    assert (skipped["status"], skipped["reason"]) == ("ignored", "pushed with -o strom.skip")
    assert service.redis.zcard(keys.pushes("site")) == 0, "the push is no longer in flight"
    assert poll_workspace(service, site) == []

    dead = "a push whose server died"
    service.redis.zadd(keys.pushes("site"), {dead: time.time() + polling.PUSH_GRACE})  # renewed last just now
    later = commit(repo, {"README.md": "y\n"}, "pushed while the server died")
    git(bare, "fetch", "-q", str(repo), "main:main")  # the ref moved; the server never stored the push
    assert poll_workspace(service, site) == [], "given time to finish"
    service.redis.zadd(keys.pushes("site"), {dead: time.time() - 1})  # PUSH_GRACE after its last renewal
    poll_workspace(service, site)  # (or the scheduler's own poll got there first)
    [reconciled] = [e["event"] for e in events(service) if e["event"]["sha"] == later]
    assert reconciled["source"] == "poll"


def test_a_push_whose_git_cannot_start_leaves_nothing_in_flight(hosted, tmp_path, monkeypatch):
    service, server = hosted
    spawn = receiver.Spawned

    def failing(args, env):
        if "STROM_PUSH_RECORD" in env:
            raise OSError("no more processes")
        return spawn(args, env)

    monkeypatch.setattr(receiver, "Spawned", failing)
    repo = init_repo(tmp_path / "src")
    commit(repo, {"README.md": "x\n", ".strom/ci.yaml": VALID})
    assert git(repo, "push", remote(server), "main", check=False).returncode != 0
    assert service.redis.zcard(keys.pushes("site")) == 0, "the poll is not held back for ten minutes"
    assert list(service.repos.root.glob("push-*.txt")) == [], "no record is left behind"
    assert events(service) == []


def test_a_push_while_redis_is_away_is_refused_before_git_moves_a_ref(hosted, tmp_path, monkeypatch):
    import redis

    service, server = hosted

    def away(*args):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(receiver, "PushInFlight", away)
    repo = init_repo(tmp_path / "src")
    commit(repo, {"README.md": "x\n", ".strom/ci.yaml": VALID})
    refused = git(repo, "push", remote(server), "main", check=False)
    assert refused.returncode != 0 and "503" in refused.stderr, refused.stderr
    bare = service.repos.hosted.ensure("site")
    assert git(bare, "rev-parse", "--verify", "-q", "refs/heads/main", check=False).returncode != 0
    assert list(service.repos.root.glob("push-*.txt")) == [], "no record is left behind"


def test_clone_needs_a_token_and_works_with_protocol_v2(hosted, tmp_path):
    _service, server = hosted
    repo = init_repo(tmp_path / "src")
    sha = commit(repo, {"README.md": "x\n", ".strom/ci.yaml": VALID})
    git(repo, "push", "-o", "strom.skip", remote(server), "main")
    anonymous = git(tmp_path, "clone", f"http://127.0.0.1:{server.port}/git/site.git", "anon", check=False)
    assert anonymous.returncode != 0 and "could not read Username" in anonymous.stderr  # asked for credentials
    wrong = git(tmp_path, "clone", f"http://strom:wrong@127.0.0.1:{server.port}/git/site.git", "anon", check=False)
    assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr
    viewer = git(
        tmp_path, "-c", "protocol.version=2", "clone", remote(server, "viewer"), "copy", env={"GIT_TRACE_PACKET": "1"}
    )
    assert "version 2" in viewer.stderr
    assert head(tmp_path / "copy") == sha
    denied = git(repo, "push", remote(server, "viewer"), "main:other", check=False)
    assert denied.returncode != 0 and "403" in denied.stderr


def test_chunked_push_and_gzip_upload_pack_requests_pass_through(hosted, tmp_path):
    service, server = hosted
    repo = init_repo(tmp_path / "src")
    (repo / "blob.bin").write_bytes(os.urandom(300_000))
    git(repo, "add", "blob.bin")
    sha = commit(repo, {".strom/ci.yaml": VALID, "README.md": "x\n"}, "big [skip ci]")
    pushed = git(
        repo,
        "-c",
        "http.postBuffer=65536",
        "push",
        remote(server),
        "main",
        env={"GIT_TRACE_CURL": "1", "GIT_TRACE_CURL_NO_DATA": "1"},
    )
    assert "Transfer-Encoding: chunked" in pushed.stderr
    # A protocol v0 upload-pack request, gzip-compressed as git sends large negotiations.
    want = f"want {sha} ofs-delta\n"
    body = gzip.compress(f"{len(want) + 4:04x}{want}00000009done\n".encode())
    answer = requests.post(
        f"http://127.0.0.1:{server.port}/git/site.git/git-upload-pack",
        data=body,
        headers={"Content-Type": "application/x-git-upload-pack-request", "Content-Encoding": "gzip"},
        auth=("strom", TOKENS["viewer"]),
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/x-git-upload-pack-result"
    assert answer.content.startswith(b"0008NAK\nPACK")
    record = wait_for(
        lambda: (found := events(service)) and found[0]["status"] != "queued" and found[0], what="the push processed"
    )
    assert record["reason"] == "the commit message asks to skip CI ([skip ci])"


def test_a_push_straight_into_the_repository_on_disk_is_checked_by_the_hook_alone(hosted, tmp_path):
    """Not through `strom web` (an administrator pushing on the server): the hook checks the push itself."""
    service, _server = hosted
    bare = service.repos.hosted.ensure("site")
    repo = init_repo(tmp_path / "src")
    commit(repo, {".strom/ci.yaml": INVALID}, "broken pipeline")
    refused = git(repo, "push", str(bare), "main", check=False)
    assert refused.returncode != 0
    assert "remote: .strom/ci.yaml:7:9: error: task 'build', step 'show': unknown key 'dependz_on'" in refused.stderr
    sha = commit(repo, {".strom/ci.yaml": VALID}, "Fix the pipeline")
    git(repo, "push", str(bare), "main")
    assert git(bare, "rev-parse", "refs/heads/main").stdout.strip() == sha


def test_push_and_clone_through_strom_web_under_gunicorn(service_workspace, redis_url, tmp_path):
    """The same push, refusal and clone with `strom web` as deployed: gunicorn's gevent workers, where the
    push is checked by the web process that serves it and git runs under gevent."""
    from service_env import Procs, free_port

    (tmp_path / "logs").mkdir()
    hook_dirs = set(Path(tempfile.gettempdir()).glob("strom-hook-*"))
    procs = Procs(service_workspace({".strom/x.yaml": VALID}), redis_url, tmp_path / "logs")
    port = free_port()
    procs.start(
        "web",
        "web",
        STROM_LISTEN=f"127.0.0.1:{port}",
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_WORKSPACES=json.dumps({"site": {"hosted": True}}),
    )
    try:
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/api/health"), 30, 0.1, "gunicorn")
        url = f"http://strom:{TOKENS['operator']}@127.0.0.1:{port}/git/site.git"
        repo = init_repo(tmp_path / "src")
        commit(repo, {"README.md": "first\n", ".strom/ci.yaml": INVALID}, "broken pipeline")
        refused = git(repo, "push", url, "main", check=False)
        assert refused.returncode != 0, refused.stderr
        assert (
            "remote: .strom/ci.yaml:7:9: error: task 'build', step 'show': unknown key 'dependz_on'" in refused.stderr
        )
        for i in range(3):  # more than one push through the same worker
            sha = commit(repo, {"README.md": f"push {i}\n", ".strom/ci.yaml": VALID}, f"push {i}")
            git(repo, "push", url, "main")
        headers = {"Authorization": f"Bearer {TOKENS['operator']}"}
        listed = requests.get(f"http://127.0.0.1:{port}/api/events?workspace=site", headers=headers, timeout=5).json()
        assert [e["sha"] for e in listed["events"]][:1] == [sha] and len(listed["events"]) == 3
        clone = tmp_path / "clone"
        git(tmp_path, "clone", "-q", url, str(clone))
        assert (clone / "README.md").read_text() == "push 2\n" and head(clone) == sha
        assert set(Path(tempfile.gettempdir()).glob("strom-hook-*")) <= hook_dirs, "each push's socket is gone"
    finally:
        procs.stop_all()


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.RequestException:
        return False
