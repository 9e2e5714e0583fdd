"""Every forge fixture sent signed to a live server: acted on, or stored and ignored with a reason."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
from fake_forge import FakeForge
from forge_fixtures import CASES, NOT_JSON, OLD_SECRET, SECRET, forge_headers
from service_env import live_stack, make_config, wait_for

from runner.forges import parser_for

PIPELINE = {
    ".strom/ci.yaml": """
    tasks:
      ci:
        input:
          what: { type: string, default: "" }
        flow:
          show:
            type: script
            script: |
              echo "what={{ input.what }} sha=$STROM_SHA branch=$STROM_BRANCH pr=${STROM_PR:-none}"
              python3 -c "import json,os; e=json.load(open(os.environ['STROM_EVENT_PATH'])); print('file', e['kind'], e['source'])"
    triggers:
      pushes: { type: push, task: ci, branches: [main, master], input: { what: "push {{ event.branch }}" } }
      tags: { type: tag, task: ci, tags: ["v*", "the-tag-*"], input: { what: "tag {{ event.tag }}" } }
      prs: { type: pull_request, task: ci, actions: [opened, synchronize, reopened, closed], input: { what: "pr {{ event.pr.number }} {{ event.pr.action }}" } }
      build: { type: comment, command: build, task: ci, args: [what] }
    """
}


def repos_of(forge: str) -> list[str]:
    names = set()
    for case in CASES:
        if case.forge == forge and case.path != NOT_JSON:
            repo = parser_for(forge).repository(forge_headers(case, case.body()), case.body())
            if repo:
                names.add(repo)
    return sorted(names)


@pytest.fixture(scope="module")
def gitea_api():
    """Gitea payloads do not say who may write: Strom asks the forge (the fork's author may only read)."""
    with FakeForge(
        "gitea", writers={"anbraten": "write", "6543": "write", "test": "write", "example2": "read"}
    ) as fake:
        yield fake


@pytest.fixture(scope="module")
def workspaces_config(gitea_api):
    spaces = {}
    for forge in ("github", "gitlab", "gitea"):
        for i, repo in enumerate(repos_of(forge)):
            api = {"api": gitea_api.url, "token": "gitea-token"} if forge == "gitea" else {}
            spaces[f"{forge}-{i}"] = {
                "folder": ".",
                "forge": {"type": forge, "repo": repo, "webhook_secrets": [OLD_SECRET, SECRET], **api},
            }
    return spaces


@pytest.fixture
def live(service_workspace, redis_url, workspaces_config, tmp_path):
    config = make_config(
        service_workspace(PIPELINE),
        redis_url,
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_WORKSPACES=json.dumps(workspaces_config),
    )
    with live_stack(config) as pair:
        yield pair


def send(server, case, secret=SECRET, delivery=None):
    body = case.body()
    delivery = delivery or str(uuid.uuid5(uuid.NAMESPACE_URL, case.path))
    return requests.post(
        f"{server.url}/webhooks/{case.forge}",
        data=body,
        headers=forge_headers(case, body, secret, delivery),
        timeout=30,
    )


ACTED = {
    "github/push.branch.json",
    "github/push.branch-create.json",
    "github/push.force.json",
    "github/push.tag-create.json",
    "github/pull_request.opened.json",
    "github/pull_request.synchronize.json",
    "github/pull_request.reopened.json",
    "github/pull_request.closed.json",
    "github/pull_request.closed.merged.json",
    "github/issue_comment.created.pull_request.json",
    "gitlab/push.json",
    "gitlab/tag_push.json",
    "gitlab/merge_request.json",
    "gitlab/merge_request.open.captured.json",
    "gitea/push.json",
    "gitea/push.branch-create.json",
    "gitea/pull_request.synchronized.json",
    "gitea/pull_request.closed.merged.json",
    "gitea/pull_request.reopened.forgejo-codeberg.json",
}
NOT_MATCHED = {  # acted-on kinds whose triggers do not match: stored, processed, ignored with the reason
    "github/push.tag-delete.json": "tag 'simple-tag' deleted: no trigger runs on deletions",
    "github/push.branch-delete.json": "branch 'feature-branch' deleted: no trigger runs on deletions",
    "github/pull_request.labeled.json": "trigger 'prs': action 'labeled' is not in [opened, synchronize, reopened, closed]",
    "github/pull_request.edited.json": "trigger 'prs': action 'edited' is not in [opened, synchronize, reopened, closed]",
    "gitlab/note.merge_request.json": "the comment has no /command line",
    "gitea/issue_comment.created.pull_request.json": "the comment has no /command line",
    "gitea/push.doc-gitea.json": "trigger 'pushes': branch 'develop' is not in [main, master]",
    "gitea/push.doc-forgejo.json": "trigger 'pushes': branch 'develop' is not in [main, master]",
    "gitea/push.branch-create.forgejo-codeberg.json": "trigger 'pushes': branch 'fdsafdsa' is not in [main, master]",
}
WAITING = {"gitea/pull_request.opened.json"}  # from a fork: waits for /ok-to-test
PINGS = {"github/ping.json", "github/ping.with-app_id.json", "github/ping.with-organization.json"}


def expected_input(case) -> str:
    if case.kind == "push":
        return f"push {case.branch}"
    if case.kind == "tag":
        return f"tag {case.tag}"
    if case.kind == "pull_request":
        return f"pr {case.pr[0]} {case.pr[1]}"
    return ""  # `/build` without words


def processed(service, event_id):
    return wait_for(
        lambda: (r := service.repo_events.load(event_id)) and r["status"] != "queued" and r,
        what=f"event {event_id} processed",
    )


def test_every_fixture_starts_its_runs_or_is_stored_and_ignored_with_a_reason(live, gitea_api):
    service, server = live
    sent = {}
    for case in CASES:
        answer = send(server, case)
        if case.path == NOT_JSON:
            assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_payload"
            continue
        if case.path in PINGS:
            assert answer.status_code == 200 and answer.json()["pong"] is True
            continue
        assert answer.status_code == 202, (case.path, answer.text)
        body = answer.json()
        assert body.get("ignored") == case.ignored, case.path
        sent[case.path] = body["id"]
    assert set(sent) == {c.path for c in CASES} - PINGS - {NOT_JSON}
    assert ACTED | set(NOT_MATCHED) | WAITING == {c.path for c in CASES if c.kind != "other" and c.path in sent}
    for case in CASES:
        if case.path not in sent:
            continue
        record = processed(service, sent[case.path])
        event = record["event"]
        assert (event["source"], event["kind"], event["repo"]) == (case.forge, case.kind, case.repo), case.path
        if case.path in ACTED:
            assert record["status"] == "done", (case.path, record)
            [run_id] = record["runs"]
            state = wait_for(lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, what="the run")
            assert state.inputs == {"what": expected_input(case)}, case.path
            assert (state.event["id"], state.event["kind"], state.event["branch"], state.event["tag"]) == (
                sent[case.path],
                case.kind,
                case.branch,
                case.tag,
            ), case.path
            if case.pr:
                assert (state.event["pr"]["number"], state.event["pr"]["action"]) == case.pr[:2], case.path
                assert state.commit == (case.pr[3] or None), case.path
            else:
                assert state.commit == case.sha, case.path
            assert state.source == case.forge and state.status.value == "succeeded", (case.path, state.error)
        elif case.path in WAITING:
            assert record["status"] == "waiting" and record["runs"] == []
            assert "a maintainer must comment /ok-to-test" in record["reason"]
        else:
            assert record["status"] == "ignored" and record["runs"] == []
            assert record["reason"] == (case.ignored or NOT_MATCHED[case.path]), case.path
    asked = {r.path for r in gitea_api.requests if r.method == "GET"}
    assert "/api/v1/repos/example/example/collaborators/example2/permission" in asked
    assert "/api/v1/repos/Test-CI/multi-line-secrets/collaborators/test/permission" in asked


def test_steps_see_the_event_as_a_file_and_in_their_environment(live):
    service, server = live
    case = next(c for c in CASES if c.path == "github/pull_request.synchronize.json")
    record = processed(service, send(server, case).json()["id"])
    [run_id] = record["runs"]
    wait_for(lambda: service.runs.load(run_id).status.terminal, what="the run")
    lines = [line.text for line in service.logs.read(run_id)]
    assert f"what=pr 2 synchronize sha={case.pr[3]} branch=changes pr=2" in lines
    assert "file pull_request github" in lines


def test_a_wrong_signature_is_refused_and_nothing_is_stored(live):
    service, server = live
    for path in ("github/push.branch.json", "gitlab/push.json", "gitea/push.json"):
        case = next(c for c in CASES if c.path == path)
        answer = send(server, case, secret="not the secret")
        assert answer.status_code == 401, path
        assert answer.json()["error"]["code"] == "unauthorized"
    case = next(c for c in CASES if c.path == "github/push.branch.json")
    unsigned = {k: v for k, v in forge_headers(case, case.body()).items() if not k.startswith("X-Hub-Signature")}
    answer = requests.post(f"{server.url}/webhooks/github", data=case.body(), headers=unsigned, timeout=10)
    assert answer.status_code == 401
    assert "missing X-Hub-Signature-256 header" in answer.json()["error"]["message"]
    assert service.repo_events.list() == []


def test_the_same_delivery_twice_makes_one_run(live):
    service, server = live
    case = next(c for c in CASES if c.path == "github/push.branch.json")
    first = send(server, case, delivery="same-delivery")
    again = send(server, case, delivery="same-delivery")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"id": first.json()["id"], "workspace": first.json()["workspace"], "duplicate": True}
    record = processed(service, first.json()["id"])
    other = processed(service, send(server, case, delivery="a redelivery with a new id").json()["id"])
    assert other["runs"] == record["runs"] and len(record["runs"]) == 1
    assert other["reason"] == f"trigger 'pushes': run {record['runs'][0]} already exists"
    assert len(service.repo_events.list()) == 2


def test_requests_that_name_nothing_strom_knows_get_a_4xx_that_tells_strangers_nothing(live):
    service, server = live
    case = next(c for c in CASES if c.path == "github/push.branch.json")
    body = case.body().replace(b'"woodpecker-ci/woodpecker"', b'"someone/else"')
    unfollowed = requests.post(
        f"{server.url}/webhooks/github", data=body, headers=forge_headers(case, body), timeout=10
    )
    forged = requests.post(
        f"{server.url}/webhooks/github",
        data=body,
        headers={**forge_headers(case, body), "X-Hub-Signature-256": "sha256=" + "0" * 64},
        timeout=10,
    )
    original = case.body()
    elsewhere = requests.post(
        f"{server.url}/webhooks/github/github-0", data=original, headers=forge_headers(case, original), timeout=10
    )
    nowhere = requests.post(
        f"{server.url}/webhooks/github/no-such-workspace",
        data=original,
        headers=forge_headers(case, original),
        timeout=10,
    )
    for answer in (unfollowed, forged, elsewhere, nowhere):  # the same answer, whatever Strom follows
        assert (answer.status_code, answer.json()) == (
            401,
            {
                "error": {
                    "code": "unauthorized",
                    "message": "the signature does not match any configured webhook secret",
                }
            },
        )
    answer = requests.post(f"{server.url}/webhooks/bitbucket", data=body, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_forge"
    headers = {k: v for k, v in forge_headers(case, b"not json").items() if k != "X-GitHub-Event"}
    answer = requests.post(f"{server.url}/webhooks/github", data=b"not json", headers=headers, timeout=10)
    assert answer.status_code == 400 and "X-GitHub-Event" in answer.json()["error"]["message"]
    answer = requests.post(
        f"{server.url}/webhooks/github", data=b"not json", headers=forge_headers(case, b"not json"), timeout=10
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_payload"
    assert service.repo_events.list() == []
