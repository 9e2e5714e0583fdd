"""Forge API clients against the recording fake forge: exact requests, mappings, retries, errors."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests
from fake_forge import FakeForge, Request

import runner
from runner.forges import ForgeApi, ForgeApiError, ForgeError, api_for
from runner.forges.api import STATES
from runner.forges.gitea_api import ForgejoApi, GiteaApi
from runner.forges.github_api import GitHubApi
from runner.forges.gitlab_api import GitLabApi

TOKEN = "s3cret-t0ken"
UA = f"strom/{runner.__version__}"
SHA = "0123456789abcdef0123456789abcdef01234567"
KINDS = ("github", "gitlab", "gitea", "forgejo")
REPOS = {"github": "octo/app", "gitlab": "group/app", "gitea": "octo/app", "forgejo": "octo/app"}
AUTH = {
    "github": {
        "accept": "application/vnd.github+json",
        "x-github-api-version": "2022-11-28",
        "authorization": f"Bearer {TOKEN}",
    },
    "gitlab": {"accept": "application/json", "private-token": TOKEN},
    "gitea": {"accept": "application/json", "authorization": f"token {TOKEN}"},
    "forgejo": {"accept": "application/json", "authorization": f"token {TOKEN}"},
}
PREFIX = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1", "forgejo": "/api/v1"}
STATE_MAPS = {
    "github": {
        "pending": "pending",
        "running": "pending",
        "success": "success",
        "failure": "failure",
        "error": "error",
        "cancelled": "error",
    },
    "gitlab": {
        "pending": "pending",
        "running": "running",
        "success": "success",
        "failure": "failed",
        "error": "failed",
        "cancelled": "canceled",
    },
}
STATE_MAPS["gitea"] = STATE_MAPS["forgejo"] = STATE_MAPS["github"]


def headers(kind: str, body: bool = True) -> dict:
    return {"user-agent": UA, **AUTH[kind], **({"content-type": "application/json"} if body else {})}


def repo_path(kind: str, repo: str | None = None) -> str:
    repo = repo or REPOS[kind]
    if kind == "gitlab":
        return PREFIX[kind] + "/projects/" + repo.replace("/", "%2F")
    return PREFIX[kind] + "/repos/" + repo


@pytest.fixture
def slept() -> list[float]:
    return []


def client(kind: str, fake: FakeForge, slept: list, repo: str | None = None, **kwargs) -> ForgeApi:
    return api_for(kind, fake.url, TOKEN, repo or REPOS[kind], sleep=slept.append, **kwargs)


def status_body(kind: str, state: str, context: str, description: str, target_url: str | None) -> dict:
    body = {"state": STATE_MAPS[kind][state], "description": description}
    body["name" if kind == "gitlab" else "context"] = context
    if target_url is not None:
        body["target_url"] = target_url
    return body


# -- statuses ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("state", STATES)
def test_status_for_each_state_is_the_forges_request(kind, state, slept):
    with FakeForge(kind) as fake:
        client(kind, fake, slept).set_status(SHA, state, "strom/build", "Build started", "https://ci.example/r/1")
    assert fake.requests == [
        Request(
            "POST",
            f"{repo_path(kind)}/statuses/{SHA}",
            headers(kind),
            status_body(kind, state, "strom/build", "Build started", "https://ci.example/r/1"),
        )
    ]
    assert slept == []


@pytest.mark.parametrize("kind", KINDS)
def test_status_without_target_url_leaves_it_out(kind, slept):
    with FakeForge(kind) as fake:
        client(kind, fake, slept).set_status(SHA, "success", "strom", "ok", None)
    assert fake.requests[0].json == status_body(kind, "success", "strom", "ok", None)
    assert "target_url" not in fake.requests[0].json


@pytest.mark.parametrize("kind", KINDS)
def test_description_is_capped_at_140_characters(kind, slept):
    with FakeForge(kind) as fake:
        api = client(kind, fake, slept)
        api.set_status(SHA, "failure", "a", "x" * 140, None)
        api.set_status(SHA, "success", "b", "y" * 141, None)
    exact, long = (r.json["description"] for r in fake.requests)
    assert exact == "x" * 140
    assert long == "y" * 139 + "…"


def test_unknown_state_is_refused_before_any_request(slept):
    with FakeForge("github") as fake:
        with pytest.raises(ValueError, match="unknown commit state 'passed'"):
            client("github", fake, slept).set_status(SHA, "passed", "c", "d", None)
    assert fake.requests == []


def test_gitlab_subgroup_project_is_one_encoded_path_segment(slept):
    with FakeForge("gitlab") as fake:
        client("gitlab", fake, slept, repo="group/sub/project").set_status(SHA, "running", "ci", "d", None)
    assert fake.requests[0].path == f"/api/v4/projects/group%2Fsub%2Fproject/statuses/{SHA}"
    assert fake.statuses() == [{"sha": SHA, "state": "running", "name": "ci", "description": "d"}]


def test_gitlab_same_state_again_counts_as_done(slept):
    with FakeForge("gitlab") as fake:
        api = client("gitlab", fake, slept)
        api.set_status(SHA, "running", "ci", "d", None)
        api.set_status(SHA, "running", "ci", "d", None)
        fake.fail_next("/projects/", 400, body={"message": "Cannot transition status via :run from :running"})
        api.set_status(SHA, "success", "ci", "d", None)
    assert len(fake.requests) == 3
    assert [s["state"] for s in fake.statuses()] == ["running"]
    assert slept == []


def test_gitlab_other_400_is_an_error(slept):
    with FakeForge("gitlab") as fake:
        fake.fail_next("/projects/", 400, body={"message": {"state": ["is invalid"]}})
        with pytest.raises(ForgeApiError, match="HTTP 400") as caught:
            client("gitlab", fake, slept).set_status(SHA, "success", "ci", "d", None)
    assert caught.value.status == 400
    assert len(fake.requests) == 1


def test_github_enterprise_base_url_with_path_prefix(slept):
    with FakeForge("github", prefix="/api/v3", writers={"dev": "write"}) as fake:
        assert fake.url.endswith("/api/v3")
        api = api_for("github", fake.url + "/", TOKEN, "corp/tool", sleep=slept.append)
        api.set_status(SHA, "pending", "strom", "queued", None)
        comment_id = api.create_comment(5, "hello")
        assert api.can_write("dev") is True
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", f"/api/v3/repos/corp/tool/statuses/{SHA}"),
        ("POST", "/api/v3/repos/corp/tool/issues/5/comments"),
        ("GET", "/api/v3/repos/corp/tool/collaborators/dev/permission"),
    ]
    assert comment_id == "1"


# -- comments ----------------------------------------------------------------------------------

COMMENT_ROUTES = {
    "github": ("POST", "/issues/7/comments", "PATCH", "/issues/comments/{id}"),
    "gitea": ("POST", "/issues/7/comments", "PATCH", "/issues/comments/{id}"),
    "forgejo": ("POST", "/issues/7/comments", "PATCH", "/issues/comments/{id}"),
    "gitlab": ("POST", "/merge_requests/7/notes", "PUT", "/merge_requests/7/notes/{id}"),
}


@pytest.mark.parametrize("kind", KINDS)
def test_create_then_edit_comment(kind, slept):
    create, create_path, edit, edit_path = COMMENT_ROUTES[kind]
    with FakeForge(kind) as fake:
        api = client(kind, fake, slept)
        first = api.create_comment(7, "Run queued")
        second = api.create_comment(7, "Another")
        api.edit_comment(7, second, "Run passed")
    assert (first, second) == ("1", "2")
    base = repo_path(kind)
    assert fake.requests == [
        Request(create, base + create_path, headers(kind), {"body": "Run queued"}),
        Request(create, base + create_path, headers(kind), {"body": "Another"}),
        Request(edit, base + edit_path.format(id=2), headers(kind), {"body": "Run passed"}),
    ]
    assert fake.comments() == [
        {"id": 1, "number": 7, "body": "Run queued"},
        {"id": 2, "number": 7, "body": "Run passed"},
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_editing_a_missing_comment_raises(kind, slept):
    with FakeForge(kind) as fake:
        with pytest.raises(ForgeApiError, match="HTTP 404") as caught:
            client(kind, fake, slept).edit_comment(7, "99", "x")
    assert caught.value.status == 404
    assert len(fake.requests) == 1


# -- permissions -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, writers, user, expected",
    [
        ("github", {"u": True}, "u", True),
        ("github", {"u": "admin"}, "u", True),
        ("github", {"u": "maintain"}, "u", True),
        ("github", {"u": "triage"}, "u", False),
        ("github", {"u": False}, "u", False),
        ("github", {}, "u", False),
        ("gitea", {"u": True}, "u", True),
        ("gitea", {"u": "owner"}, "u", True),
        ("gitea", {"u": "admin"}, "u", True),
        ("gitea", {"u": False}, "u", False),
        ("gitea", {}, "u", False),
        ("forgejo", {"u": True}, "u", True),
        ("forgejo", {}, "u", False),
    ],
)
def test_can_write_github_and_gitea(kind, writers, user, expected, slept):
    with FakeForge(kind, writers=writers) as fake:
        assert client(kind, fake, slept).can_write(user) is expected
    assert fake.requests == [
        Request("GET", f"{repo_path(kind)}/collaborators/{user}/permission", headers(kind, body=False), None)
    ]


def test_github_role_name_alone_grants_write(slept):
    with FakeForge("github") as fake:
        fake.fail_next("/repos/", 200, body={"permission": "read", "role_name": "maintain"})
        assert client("github", fake, slept).can_write("m") is True


@pytest.mark.parametrize("level, expected", [(50, True), (40, True), (30, True), (20, False), (10, False)])
def test_can_write_gitlab_by_access_level(level, expected, slept):
    with FakeForge("gitlab", writers={"dev": level}) as fake:
        assert client("gitlab", fake, slept, repo="group/sub/app").can_write("dev") is expected
        user_id = fake.user_id("dev")
    assert fake.requests == [
        Request("GET", "/api/v4/users?username=dev", headers("gitlab", body=False), None),
        Request(
            "GET", f"/api/v4/projects/group%2Fsub%2Fapp/members/all/{user_id}", headers("gitlab", body=False), None
        ),
    ]


def test_gitlab_user_who_is_not_a_member_cannot_write(slept):
    with FakeForge("gitlab", users=["outsider"]) as fake:
        assert client("gitlab", fake, slept).can_write("outsider") is False
    assert [r.path for r in fake.requests] == [
        "/api/v4/users?username=outsider",
        f"/api/v4/projects/group%2Fapp/members/all/{fake.user_id('outsider')}",
    ]


def test_gitlab_unknown_user_cannot_write_and_needs_one_request(slept):
    with FakeForge("gitlab", writers={"dev": True}) as fake:
        assert client("gitlab", fake, slept).can_write("ghost") is False
    assert [r.path for r in fake.requests] == ["/api/v4/users?username=ghost"]


# -- reactions and teams -----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_reaction_on_a_comment_is_the_forges_request(kind, slept):
    with FakeForge(kind) as fake:
        client(kind, fake, slept).react(12, "345", "+1")
        client(kind, fake, slept).react(12, "345", "confused")
    if kind == "gitlab":
        path = f"{repo_path(kind)}/merge_requests/12/notes/345/award_emoji"
        bodies = [{"name": "thumbsup"}, {"name": "confused"}]
    else:
        path = f"{repo_path(kind)}/issues/comments/345/reactions"
        bodies = [{"content": "+1"}, {"content": "confused"}]
    assert fake.requests == [Request("POST", path, headers(kind), body) for body in bodies]


def test_an_unknown_reaction_is_refused_before_any_request(slept):
    with FakeForge("github") as fake:
        with pytest.raises(ValueError, match="unknown reaction 'tada'"):
            client("github", fake, slept).react(1, "2", "tada")
    assert fake.requests == []


@pytest.mark.parametrize("user, expected", [("carol", True), ("mallory", False)])
def test_team_membership_github(user, expected, slept):
    with FakeForge("github", teams={"octo/release": ["carol"]}) as fake:
        assert client("github", fake, slept).in_team("@octo/release", user) is expected
    assert fake.requests == [
        Request("GET", f"/orgs/octo/teams/release/memberships/{user}", headers("github", body=False), None)
    ]


@pytest.mark.parametrize("kind", ["gitea", "forgejo"])
@pytest.mark.parametrize("user, expected", [("carol", True), ("mallory", False)])
def test_team_membership_gitea_finds_the_team_then_asks_for_the_member(kind, user, expected, slept):
    with FakeForge(kind, teams={"octo/release": ["carol"], "octo/docs": ["mallory"]}) as fake:
        assert client(kind, fake, slept).in_team("@octo/release", user) is expected
    assert fake.requests == [
        Request("GET", "/api/v1/orgs/octo/teams/search?q=release", headers(kind, body=False), None),
        Request("GET", f"/api/v1/teams/2/members/{user}", headers(kind, body=False), None),
    ]


def test_team_membership_gitea_unknown_team_is_no(slept):
    with FakeForge("gitea", teams={"octo/release": ["carol"]}) as fake:
        assert client("gitea", fake, slept).in_team("@octo/ops", "carol") is False
    assert [r.path for r in fake.requests] == ["/api/v1/orgs/octo/teams/search?q=ops"]


@pytest.mark.parametrize("user, expected", [("carol", True), ("mallory", False)])
def test_group_membership_gitlab_subgroups_included(user, expected, slept):
    with FakeForge("gitlab", users=["carol", "mallory"], teams={"octo/release/oncall": ["carol"]}) as fake:
        assert client("gitlab", fake, slept).in_team("@octo/release/oncall", user) is expected
        user_id = fake.user_id(user)
    assert fake.requests == [
        Request("GET", f"/api/v4/users?username={user}", headers("gitlab", body=False), None),
        Request(
            "GET", f"/api/v4/groups/octo%2Frelease%2Foncall/members/all/{user_id}", headers("gitlab", body=False), None
        ),
    ]


def test_a_team_must_be_written_org_slash_team(slept):
    with FakeForge("github") as fake:
        with pytest.raises(ValueError, match="is not written as @org/team"):
            client("github", fake, slept).in_team("@octo", "carol")


# -- retries -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_502_is_retried_after_backoff(kind, slept):
    with FakeForge(kind) as fake:
        fake.fail_next("/", 502)
        client(kind, fake, slept, backoff=0.25).set_status(SHA, "success", "c", "d", None)
    assert len(fake.requests) == 2
    assert fake.requests[0] == fake.requests[1]
    assert slept == [0.25]
    assert len(fake.statuses()) == 1


def test_backoff_doubles_and_gives_up_after_attempts(slept):
    with FakeForge("github") as fake:
        fake.fail_next("/repos/", 503, times=10)
        with pytest.raises(ForgeApiError) as caught:
            client("github", fake, slept, attempts=4, backoff=0.5).create_comment(1, "x")
    assert len(fake.requests) == 4
    assert slept == [0.5, 1.0, 2.0]
    assert caught.value.status == 503
    assert "gave up after 4 attempts" in str(caught.value)
    assert fake.comments() == []


def test_429_honours_retry_after(slept):
    with FakeForge("gitlab") as fake:
        fake.fail_next("/projects/", 429, headers={"Retry-After": "7"})
        client("gitlab", fake, slept).create_comment(3, "x")
    assert slept == [7.0]
    assert len(fake.requests) == 2


def test_waits_are_capped_at_max_wait(slept):
    with FakeForge("gitea") as fake:
        fake.fail_next("/repos/", 429, headers={"Retry-After": "3600"})
        fake.fail_next("/repos/", 500)
        client("gitea", fake, slept, max_wait=5.0, backoff=8.0).create_comment(3, "x")
    assert slept == [5.0, 5.0]


def test_github_rate_limit_403_waits_until_reset(slept):
    with FakeForge("github") as fake:
        reset = int(time.time()) + 30
        fake.fail_next(
            "/repos/",
            403,
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
            body={"message": "API rate limit exceeded"},
        )
        client("github", fake, slept, max_wait=120).set_status(SHA, "success", "c", "d", None)
    assert len(fake.requests) == 2
    assert len(slept) == 1 and 27 <= slept[0] <= 30


def test_github_secondary_rate_limit_403_with_retry_after(slept):
    with FakeForge("github") as fake:
        fake.fail_next(
            "/repos/", 403, headers={"Retry-After": "3"}, body={"message": "You have exceeded a secondary rate limit"}
        )
        client("github", fake, slept).set_status(SHA, "success", "c", "d", None)
    assert slept == [3.0]
    assert len(fake.requests) == 2


@pytest.mark.parametrize("status", [401, 403, 404, 422])
@pytest.mark.parametrize("kind", KINDS)
def test_other_client_errors_are_not_retried(kind, status, slept):
    with FakeForge(kind) as fake:
        fake.fail_next("/", status, body={"message": f"no way for token {TOKEN}"})
        with pytest.raises(ForgeApiError) as caught:
            client(kind, fake, slept).set_status(SHA, "success", "c", "d", None)
    message = str(caught.value)
    assert len(fake.requests) == 1
    assert slept == []
    assert caught.value.status == status
    assert f"HTTP {status}" in message
    assert f"POST {repo_path(kind)}/statuses/{SHA}" in message
    assert "no way for token" in message
    assert TOKEN not in message


def test_connection_refused_is_retried_then_raises(slept):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = api_for("gitea", f"http://127.0.0.1:{port}/api/v1", TOKEN, "o/r", attempts=4, backoff=0.5, sleep=slept.append)
    with pytest.raises(ForgeApiError) as caught:
        api.set_status(SHA, "success", "c", "d", None)
    assert slept == [0.5, 1.0, 2.0]
    assert caught.value.status is None
    assert f"/api/v1/repos/o/r/statuses/{SHA}" in str(caught.value)
    assert TOKEN not in str(caught.value)


class ScriptedSession:
    """Stands in for requests.Session: raises or answers from a script, records each call."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = []

    def request(self, method, url, **kwargs):
        self.calls.append((method, url, kwargs))
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def ok_response(body: bytes = b"{}") -> requests.Response:
    response = requests.Response()
    response.status_code, response._content, response.url = 201, body, "http://forge/x"
    return response


def test_timeouts_are_retried_and_every_request_has_a_timeout(slept):
    session = ScriptedSession(requests.ReadTimeout("slow"), ok_response(b'{"id": 42}'))
    api = api_for("github", "https://api.github.com", TOKEN, "o/r", session=session, timeout=3.5, sleep=slept.append)
    assert api.create_comment(1, "x") == "42"
    assert slept == [0.5]
    assert [call[2]["timeout"] for call in session.calls] == [3.5, 3.5]
    assert session.calls[0][1] == "https://api.github.com/repos/o/r/issues/1/comments"
    assert session.calls[0][2]["headers"]["User-Agent"] == UA


# -- choosing a client -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, cls", [("github", GitHubApi), ("gitlab", GitLabApi), ("gitea", GiteaApi), ("forgejo", ForgejoApi)]
)
def test_api_for_picks_the_client(kind, cls):
    api = api_for(kind, "https://forge.example/api/", None, "o/r")
    assert type(api) is cls
    assert api.kind == kind
    assert api.base_url == "https://forge.example/api"


def test_api_for_unknown_kind():
    with pytest.raises(ForgeError, match="unknown forge kind 'bitbucket'"):
        api_for("bitbucket", "https://x", None, "o/r")


@pytest.mark.parametrize("kind", KINDS)
def test_without_a_token_no_auth_header_is_sent(kind, slept):
    with FakeForge(kind) as fake:
        api_for(kind, fake.url, None, REPOS[kind], sleep=slept.append).create_comment(1, "x")
    sent = fake.requests[0].headers
    assert "authorization" not in sent and "private-token" not in sent
    assert sent["user-agent"] == UA


# -- the fake itself ---------------------------------------------------------------------------


def test_fake_records_unknown_routes_as_404():
    with FakeForge("gitea") as fake:
        response = requests.delete(fake.url + "/repos/o/r?x=1", json={"a": 1}, timeout=5)
        outside = requests.get(fake.root + "/repos/o/r/collaborators/u/permission", timeout=5)
    assert response.status_code == 404 and response.json() == {"message": "Not Found"}
    assert outside.status_code == 404
    assert [(r.method, r.path, r.json) for r in fake.requests] == [
        ("DELETE", "/api/v1/repos/o/r?x=1", {"a": 1}),
        ("GET", "/repos/o/r/collaborators/u/permission", None),
    ]


def test_fake_fail_next_matches_method_predicate_and_counts_down():
    with FakeForge("github") as fake:
        fake.fail_next(lambda r: r.path.endswith("/comments"), 500, times=2, method="POST", body="boom")
        url = fake.url + "/repos/o/r/issues/1/comments"
        answers = [requests.post(url, json={"body": "b"}, timeout=5) for _ in range(3)]
    assert [a.status_code for a in answers] == [500, 500, 201]
    assert answers[0].text == "boom"
    assert fake.comments() == [{"id": 1, "number": 1, "body": "b"}]


def test_fake_wait_for_requests_wakes_on_arrival():
    with FakeForge("github") as fake:
        threading.Timer(0.05, requests.get, args=(fake.url + "/nothing",), kwargs={"timeout": 5}).start()
        seen = fake.wait_for_requests(1, timeout=5)
        assert [r.path for r in seen] == ["/nothing"]
        with pytest.raises(AssertionError, match="expected 2 requests"):
            fake.wait_for_requests(2, timeout=0.1)
