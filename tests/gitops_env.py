"""Shared by the GitOps tests: a `git:` workspace config pointing at a fake forge, webhook payloads
shaped like the fixtures (changed only where the test needs it), and waiting on what they cause."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import requests
from forge_fixtures import FIXTURES, SECRET, ZERO, case_named, forge_headers
from git_env import git
from service_env import make_config, wait_for

from runner.store import RunFilter

REPO = "octo/app"


def make_gitops_config(
    tmp_path, redis_url, bare, forge, public_url="https://strom.example.com", env: dict | None = None, **workspace
):
    spec = {
        "git": str(bare),
        "branches": ["main", "busy"],
        "forge": {
            "type": "github",
            "repo": REPO,
            "api": forge.url,
            "token": "ghp_test_token",
            "webhook_secrets": [SECRET],
        },
        **workspace,
    }
    folder = tmp_path / "empty"
    folder.mkdir(parents=True, exist_ok=True)
    return make_config(
        folder,
        redis_url,
        STROM_DATA_DIR=str(tmp_path / "data"),
        STROM_WORKSPACES=json.dumps({"app": spec}),
        STROM_SECRET_DEPLOY_KEY="k3y-value-123",
        STROM_PUBLIC_URL=public_url,
        **(env or {}),
    )


def post_github(server, case_path: str, data: dict):
    case = case_named(case_path)
    body = json.dumps(data).encode()
    headers = forge_headers(case, body, delivery=str(uuid.uuid4()))
    answer = requests.post(f"{server.url}/webhooks/github", data=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def push_hook(server, work: Path, ref: str, before: str, after: str):
    data = json.loads((FIXTURES / "github/push.branch.json").read_bytes())
    files = (
        git(work, "diff", "--name-only", before, after)
        if before != ZERO
        else git(work, "show", "--format=", "--name-only", after)
    ).stdout.split()
    message = git(work, "log", "-1", "--format=%B", after).stdout.strip()
    data.update(ref=ref, before=before, after=after, created=before == ZERO, deleted=False, forced=False)
    data["head_commit"] = {**data["head_commit"], "id": after, "message": message}
    data["commits"] = [{**data["head_commit"], "added": [], "removed": [], "modified": files}]
    data["repository"] = {**data["repository"], "full_name": REPO}
    return post_github(server, "github/push.branch.json", data)


def pr_hook(server, number: int, action: str, head_sha: str, head_ref: str, author: str, association: str, fork: bool):
    data = json.loads((FIXTURES / "github/pull_request.opened.json").read_bytes())
    data.update(action=action, number=number)
    pr = data["pull_request"]
    pr.update(number=number, title=f"Change #{number}", author_association=association)
    pr["user"] = {**pr["user"], "login": author}
    pr["head"] = {
        **pr["head"],
        "sha": head_sha,
        "ref": head_ref,
        "repo": {**pr["head"]["repo"], "full_name": f"{author}/app" if fork else REPO},
    }
    pr["base"] = {**pr["base"], "ref": "main", "repo": {**pr["base"]["repo"], "full_name": REPO}}
    data["repository"] = {**data["repository"], "full_name": REPO}
    return post_github(server, "github/pull_request.opened.json", data)


def comment_hook(
    server,
    number: int,
    body: str,
    author: str,
    association: str,
    pr_author: str = "mallory",
    pr_association: str = "CONTRIBUTOR",
):
    data = json.loads((FIXTURES / "github/issue_comment.created.pull_request.json").read_bytes())
    data["issue"] = {
        **data["issue"],
        "number": number,
        "author_association": pr_association,
        "user": {**data["issue"]["user"], "login": pr_author},
    }
    data["comment"] = {
        **data["comment"],
        "body": body,
        "author_association": association,
        "id": uuid.uuid4().int % 10**9,
        "user": {**data["comment"]["user"], "login": author, "type": "User"},
    }
    data["repository"] = {**data["repository"], "full_name": REPO}
    return post_github(server, "github/issue_comment.created.pull_request.json", data)


def processed(service, event_id, status=None):
    def ready():
        record = service.repo_events.load(event_id)
        if record and record["status"] != "queued" and (status is None or record["status"] == status):
            return record

    return wait_for(ready, what=f"event {event_id} processed")


def finished(service, run_id):
    return wait_for(lambda: (s := service.runs.load(run_id)) and s.status.terminal and s, what=f"run {run_id}")


def runs_of(service, task):
    return service.runs.list(RunFilter(task=task)).runs


def lines(service, run_id):
    return [line.text for line in service.logs.read(run_id)]


def statuses(forge, count):
    wait_for(lambda: len(forge.statuses()) >= count, what=f"{count} commit statuses")
    return [(s["context"], s["state"], s["description"], s["sha"]) for s in forge.statuses()]


def post_to(server, forge: str, case_path: str, data: dict):
    case = case_named(case_path)
    body = json.dumps(data).encode()
    answer = requests.post(
        f"{server.url}/webhooks/{forge}",
        data=body,
        timeout=30,
        headers=forge_headers(case, body, delivery=str(uuid.uuid4())),
    )
    assert answer.status_code == 202, answer.text
    return answer.json()["id"]


def gitlab_merge_request(server, iid: int, head_sha: str, source: str):
    data = json.loads((FIXTURES / "gitlab/merge_request.json").read_bytes())
    data["project"] = {**data["project"], "path_with_namespace": REPO, "id": 14}
    data["object_attributes"] = {
        **data["object_attributes"],
        "iid": iid,
        "action": "open",
        "source_branch": source,
        "target_branch": "main",
        "source_project_id": 14,
        "target_project_id": 14,
        "last_commit": {**data["object_attributes"]["last_commit"], "id": head_sha},
    }
    return post_to(server, "gitlab", "gitlab/merge_request.json", data)


def gitea_pull_request(server, number: int, head_sha: str, source: str):
    data = json.loads((FIXTURES / "gitea/pull_request.opened.json").read_bytes())
    data.update(number=number)
    pr = data["pull_request"]
    pr.update(number=number)
    pr["head"] = {
        **pr["head"],
        "sha": head_sha,
        "ref": source,
        "repo_id": 1,
        "repo": {**pr["head"]["repo"], "id": 1, "full_name": REPO},
    }
    pr["base"] = {**pr["base"], "ref": "main", "repo_id": 1, "repo": {**pr["base"]["repo"], "id": 1, "full_name": REPO}}
    data["repository"] = {**data["repository"], "full_name": REPO}
    return post_to(server, "gitea", "gitea/pull_request.opened.json", data)
