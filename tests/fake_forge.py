"""A recording fake of the forges' REST APIs (GitHub, GitLab, Gitea/Forgejo), for tests.

    with FakeForge("gitlab", writers={"alice": True}) as fake:
        api = api_for("gitlab", fake.url, "tok", "group/project")
        api.set_status("abc", "running", "strom/ci", "running", None)
        assert fake.requests[0].path == "/api/v4/projects/group%2Fproject/statuses/abc"

The server listens on 127.0.0.1 on an ephemeral port. `.url` is the API base URL a client is
given: the root for GitHub (or `prefix`, e.g. "/api/v3" for Enterprise), /api/v4 for GitLab,
/api/v1 for Gitea and Forgejo.

Every request is recorded, in arrival order, as a `Request` in `.requests` (unknown routes and
scripted failures too). The fake keeps comments in memory (ids 1, 2, ... per server) so create
then edit works, records accepted commit statuses, answers permission and membership lookups from
`writers` and `teams`, records reactions (GitLab award emoji) on comments, and lets a test script
failures with `fail_next`.

`writers` maps a user to True (write access), False (read access), or a role: for GitHub a role
name ("admin", "maintain", "write", "triage", "read"), for Gitea a permission ("owner", "admin",
"write", "read"), for GitLab an access level (10..50). Users not in `writers` get 404 from
permission lookups; for GitLab, `users` names people who exist but are not project members.
`teams` maps "org/team" (a GitLab group path) to its members.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["RECORDED_HEADERS", "FakeForge", "Request"]

PREFIXES = {"github": "", "gitlab": "/api/v4", "gitea": "/api/v1", "forgejo": "/api/v1"}
RECORDED_HEADERS = ("authorization", "private-token", "accept", "x-github-api-version", "user-agent", "content-type")
GITHUB_PERMISSION = {"admin": "admin", "maintain": "write", "write": "write", "triage": "read", "read": "read"}
GITLAB_EVENTS = {
    "pending": "enqueue",
    "running": "run",
    "success": "success",
    "failed": "drop",
    "canceled": "cancel",
    "skipped": "skip",
}


@dataclass(frozen=True)
class Request:
    """One recorded request. `path` is the raw request target (with query); `route` is `path`
    relative to the fake's API base; `headers` holds RECORDED_HEADERS present, lowercase."""

    method: str
    path: str
    headers: dict
    json: Any
    route: str = field(default="", compare=False)


@dataclass
class _Failure:
    match: Callable[[Request], bool]
    status: int
    times: int
    headers: dict
    body: Any


class FakeForge:
    """A fake forge API server; use as a context manager (or call start() and close())."""

    def __init__(
        self,
        kind: str = "github",
        *,
        writers: Mapping[str, Any] | None = None,
        users: Iterable[str] = (),
        prefix: str | None = None,
        teams: Mapping[str, Iterable[str]] | None = None,
    ):
        if kind not in PREFIXES:
            raise ValueError(f"unknown forge kind {kind!r}")
        self.kind = kind
        self.prefix = PREFIXES[kind] if prefix is None else prefix.rstrip("/")
        self.writers = dict(writers or {})
        self.users = set(users)
        self.teams = {name.lower(): set(members) for name, members in (teams or {}).items()}
        self._reactions: list[dict] = []
        self.requests: list[Request] = []
        self._comments: dict[int, dict] = {}
        self._statuses: list[dict] = []
        self._user_ids: dict[str, int] = {}
        self._failures: list[_Failure] = []
        self._changed = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeForge:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name=f"fake-{self.kind}", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=5)
            self._server = None

    def __enter__(self) -> FakeForge:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def root(self) -> str:
        """http://127.0.0.1:<port>, without the API prefix."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def url(self) -> str:
        """The API base URL to give a client."""
        return self.root + self.prefix

    # -- scripting and inspecting --------------------------------------------------------------

    def fail_next(
        self,
        match: str | Callable[[Request], bool],
        status: int,
        times: int = 1,
        *,
        method: str | None = None,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
    ) -> None:
        """Answer the next `times` matching requests with `status` instead of handling them.
        `match` is a prefix of the route (the path relative to `.url`, e.g. "/repos/o/r/statuses")
        or a predicate on the Request; `method` narrows it. `body` is JSON (dict or list) or text;
        by default {"message": <reason phrase>}."""
        test = (lambda r: r.route.startswith(match)) if isinstance(match, str) else match
        if method is not None:
            plain, wanted = test, method.upper()
            test = lambda r: r.method == wanted and plain(r)  # noqa: E731
        with self._changed:
            self._failures.append(_Failure(test, status, times, dict(headers or {}), body))

    def wait_for_requests(self, n: int, timeout: float = 5.0) -> list[Request]:
        """The recorded requests once there are at least `n`; AssertionError after `timeout` seconds."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.requests) >= n, timeout):
                raise AssertionError(
                    f"expected {n} requests within {timeout}s, got {len(self.requests)}: "
                    f"{[(r.method, r.path) for r in self.requests]}"
                )
            return list(self.requests)

    def statuses(self) -> list[dict]:
        """Accepted commit statuses in order: the forge's JSON body plus "sha"."""
        with self._changed:
            return [dict(s) for s in self._statuses]

    def comments(self) -> list[dict]:
        """Current comments (or GitLab notes): {"id", "number", "body"}, by id."""
        with self._changed:
            return [dict(self._comments[i]) for i in sorted(self._comments)]

    def reactions(self) -> list[dict]:
        """Reactions added, in order: {"comment": id, "content": "+1"} (GitLab: the emoji name)."""
        with self._changed:
            return [dict(r) for r in self._reactions]

    def replies(self, number: int | None = None) -> list[str]:
        """Bodies of the comments that are not the summary comment, oldest first."""
        return [
            c["body"]
            for c in self.comments()
            if "strom:summary" not in c["body"] and (number is None or c["number"] == number)
        ]

    def user_id(self, name: str) -> int:
        """The numeric id the fake GitLab gives `name` (stable per server)."""
        with self._changed:
            return self._user_ids.setdefault(name, 1000 + len(self._user_ids) + 1)

    def clear(self) -> None:
        """Forget recorded requests (comments, statuses and scripted failures stay)."""
        with self._changed:
            self.requests.clear()

    # -- serving -------------------------------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Mapping[str, str], raw: bytes) -> tuple[int, dict, Any]:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        path = urlsplit(target).path
        inside = path.startswith(self.prefix + "/")
        route = target[len(self.prefix) :] if inside else target
        kept = {k.lower(): v for k, v in headers.items() if k.lower() in RECORDED_HEADERS}
        request = Request(method, target, kept, body, route)
        with self._changed:
            self.requests.append(request)
            self._changed.notify_all()
            failure = next((f for f in self._failures if f.match(request)), None)
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                answer = failure.body if failure.body is not None else {"message": HTTPStatus(failure.status).phrase}
                return failure.status, failure.headers, answer
            if inside:
                handler = _GITLAB_ROUTES if self.kind == "gitlab" else _REPO_ROUTES
                answer = self._route(handler, method, route, body)
                if answer is not None:
                    return answer
        return 404, {}, {"message": "Not Found"}

    def _route(self, routes, method: str, route: str, body: Any):
        split = urlsplit(route)
        parts = split.path.strip("/").split("/")
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        for verb, pattern, action in routes:
            if (
                verb == method
                and len(pattern) == len(parts)
                and all(p.startswith("{") or p == part for p, part in zip(pattern, parts))
            ):
                args = [unquote(part) for p, part in zip(pattern, parts) if p.startswith("{")]
                return action(self, query, body if isinstance(body, dict) else {}, *args)
        return None

    # GitHub, Gitea, Forgejo

    def _post_status(self, query, body, owner, name, sha):
        self._statuses.append({"sha": sha, **body})
        return 201, {}, {"id": len(self._statuses), "sha": sha, **body}

    def _new_comment(self, number: str, body: dict) -> dict:
        comment = {"id": max(self._comments, default=0) + 1, "number": int(number), "body": body.get("body", "")}
        self._comments[comment["id"]] = comment
        return dict(comment)

    def _edit_comment(self, comment_id: str, body: dict, number: str | None = None) -> dict | None:
        comment = self._comments.get(int(comment_id)) if comment_id.isdigit() else None
        if comment is None or (number is not None and str(comment["number"]) != number):
            return None
        comment["body"] = body.get("body", "")
        return dict(comment)

    def _post_comment(self, query, body, owner, name, number):
        comment = self._new_comment(number, body)
        return 201, {}, {**comment, "html_url": f"{self.root}/{owner}/{name}/issues/{number}#{comment['id']}"}

    def _patch_comment(self, query, body, owner, name, comment_id):
        comment = self._edit_comment(comment_id, body)
        return None if comment is None else (200, {}, comment)

    def _permission(self, query, body, owner, name, user):
        if user not in self.writers:
            return None
        value = self.writers[user]
        role = {True: "write", False: "read"}.get(value, value) if isinstance(value, bool) else str(value)
        if self.kind == "github":
            return (
                200,
                {},
                {"permission": GITHUB_PERMISSION.get(role, role), "role_name": role, "user": {"login": user}},
            )
        return 200, {}, {"permission": role, "role_name": role, "user": {"login": user}}

    def _react(self, query, body, owner, name, comment_id):
        if not comment_id.isdigit():
            return None
        self._reactions.append({"comment": int(comment_id), "content": body.get("content")})
        return 201, {}, {"id": len(self._reactions), "content": body.get("content")}

    def _team_members(self, team: str) -> set[str] | None:
        return self.teams.get(team.lower())

    def _github_membership(self, query, body, org, slug, user):
        members = self._team_members(f"{org}/{slug}")
        if members is None or user not in members:
            return None
        return 200, {}, {"state": "active", "role": "member"}

    def _gitea_team_search(self, query, body, org):
        wanted = query.get("q", "").lower()
        found = [
            {"id": i + 1, "name": name.split("/", 1)[1]}
            for i, name in enumerate(sorted(self.teams))
            if name.split("/", 1)[0] == org.lower() and wanted in name.split("/", 1)[1]
        ]
        return 200, {}, {"data": found, "ok": True}

    def _gitea_team_member(self, query, body, team_id, user):
        names = sorted(self.teams)
        index = int(team_id) - 1 if team_id.isdigit() else -1
        if not 0 <= index < len(names) or user not in self.teams[names[index]]:
            return None
        return 200, {}, {"login": user}

    # GitLab

    def _gitlab_award(self, query, body, project, iid, note_id):
        if not note_id.isdigit():
            return None
        self._reactions.append({"comment": int(note_id), "content": body.get("name")})
        return 201, {}, {"id": len(self._reactions), "name": body.get("name")}

    def _gitlab_group_member(self, query, body, group, user_id):
        user = next((u for u, i in self._user_ids.items() if str(i) == user_id), None)
        members = self._team_members(group)
        if user is None or members is None or user not in members:
            return None
        return 200, {}, {"id": int(user_id), "username": user, "access_level": 30}

    def _gitlab_status(self, query, body, project, sha):
        state, name = body.get("state"), body.get("name", "default")
        last = next((s for s in reversed(self._statuses) if s["sha"] == sha and s.get("name", "default") == name), None)
        if last is not None and last.get("state") == state:
            event = GITLAB_EVENTS.get(state, state)
            return 400, {}, {"message": f"Cannot transition status via :{event} from :{state}"}
        self._statuses.append({"sha": sha, **body})
        return 201, {}, {"id": len(self._statuses), "sha": sha, "status": state, "name": name}

    def _gitlab_note(self, query, body, project, iid):
        note = self._new_comment(iid, body)
        return (
            201,
            {},
            {"id": note["id"], "body": note["body"], "noteable_iid": int(iid), "noteable_type": "MergeRequest"},
        )

    def _gitlab_edit_note(self, query, body, project, iid, note_id):
        note = self._edit_comment(note_id, body, number=iid)
        return (
            None
            if note is None
            else (
                200,
                {},
                {"id": note["id"], "body": note["body"], "noteable_iid": int(iid), "noteable_type": "MergeRequest"},
            )
        )

    def _gitlab_users(self, query, body):
        name = query.get("username", "")
        known = {u.lower(): u for u in (*self.writers, *self.users)}
        if name.lower() not in known:
            return 200, {}, []
        user = known[name.lower()]
        return 200, {}, [{"id": self.user_id(user), "username": user, "state": "active"}]

    def _gitlab_member(self, query, body, project, user_id):
        user = next((u for u, i in self._user_ids.items() if str(i) == user_id), None)
        if user is None or user not in self.writers:
            return None
        value = self.writers[user]
        level = (30 if value else 20) if isinstance(value, bool) else int(value)
        return 200, {}, {"id": int(user_id), "username": user, "access_level": level}


_REPO_ROUTES = [
    ("POST", ("repos", "{o}", "{n}", "statuses", "{sha}"), FakeForge._post_status),
    ("POST", ("repos", "{o}", "{n}", "issues", "{number}", "comments"), FakeForge._post_comment),
    ("PATCH", ("repos", "{o}", "{n}", "issues", "comments", "{id}"), FakeForge._patch_comment),
    ("GET", ("repos", "{o}", "{n}", "collaborators", "{user}", "permission"), FakeForge._permission),
    ("POST", ("repos", "{o}", "{n}", "issues", "comments", "{id}", "reactions"), FakeForge._react),
    ("GET", ("orgs", "{org}", "teams", "{slug}", "memberships", "{user}"), FakeForge._github_membership),
    ("GET", ("orgs", "{org}", "teams", "search"), FakeForge._gitea_team_search),
    ("GET", ("teams", "{id}", "members", "{user}"), FakeForge._gitea_team_member),
]
_GITLAB_ROUTES = [
    ("POST", ("projects", "{id}", "statuses", "{sha}"), FakeForge._gitlab_status),
    ("POST", ("projects", "{id}", "merge_requests", "{iid}", "notes"), FakeForge._gitlab_note),
    ("PUT", ("projects", "{id}", "merge_requests", "{iid}", "notes", "{note}"), FakeForge._gitlab_edit_note),
    ("GET", ("users",), FakeForge._gitlab_users),
    ("GET", ("projects", "{id}", "members", "all", "{user}"), FakeForge._gitlab_member),
    (
        "POST",
        ("projects", "{id}", "merge_requests", "{iid}", "notes", "{note}", "award_emoji"),
        FakeForge._gitlab_award,
    ),
    ("GET", ("groups", "{id}", "members", "all", "{user}"), FakeForge._gitlab_group_member),
]


def _handler(fake: FakeForge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, headers, body = fake._handle(self.command, self.path, self.headers, raw)
            data = (
                body
                if isinstance(body, bytes)
                else body.encode()
                if isinstance(body, str)
                else json.dumps(body).encode()
            )
            self.send_response(status)
            if not any(k.lower() == "content-type" for k in headers):
                kind = "application/json" if not isinstance(body, (str, bytes)) else "text/plain"
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format, *args) -> None:
            pass

    return Handler
