"""Reporting back to forges: commit statuses, pull/merge request comments, permission checks.

`ForgeApi` holds what every forge client shares: the session, headers, the retry loop and
errors. Each forge's subclass only says which requests to send (see `github_api`, `gitlab_api`,
`gitea_api`); `api_for` picks one by kind.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable
from typing import Any, TypedDict, Unpack
from urllib.parse import quote, urlsplit

import requests

from .. import __version__
from .errors import ForgeError

__all__ = [
    "KINDS",
    "REACTIONS",
    "STATES",
    "ApiOptions",
    "ForgeApi",
    "ForgeApiError",
    "api_for",
    "cap_description",
    "path_part",
]

STATES = ("pending", "running", "success", "failure", "error", "cancelled")
REACTIONS = ("+1", "-1", "confused", "eyes", "rocket")
DESCRIPTION_LIMIT = 140
BODY_EXCERPT = 300
KINDS = ("github", "gitlab", "gitea", "forgejo")


class ForgeApiError(ForgeError):
    """A forge API request failed for good; `.status` is the last HTTP status (None: no answer)."""

    status_hint = 502

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def path_part(value: str | int) -> str:
    """`value` escaped as one URL path segment."""
    return quote(str(value), safe="")


def cap_description(text: str) -> str:
    return text if len(text) <= DESCRIPTION_LIMIT else text[: DESCRIPTION_LIMIT - 1] + "…"


class ForgeApi:
    """One repository on one forge. Subclasses implement the four operations."""

    kind = ""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        repo: str,
        *,
        session: requests.Session | None = None,
        attempts: int = 5,
        backoff: float = 0.5,
        max_wait: float = 60.0,
        timeout: float = 10.0,
        sleep: Callable[[float], Any] = time.sleep,
    ):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.repo = repo.strip("/")
        self.session = session or requests.Session()
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self.max_wait = max_wait
        self.timeout = timeout
        self.sleep = sleep

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.base_url} {self.repo}>"

    # -- the operations ------------------------------------------------------------------------

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None) -> None:
        raise NotImplementedError

    def create_comment(self, number: int, body: str) -> str:
        raise NotImplementedError

    def edit_comment(self, number: int, comment_id: str, body: str) -> None:
        raise NotImplementedError

    def can_write(self, user: str) -> bool:
        raise NotImplementedError

    def react(self, number: int, comment_id: str, reaction: str) -> None:
        """Add `reaction` (one of REACTIONS) to a comment of pull request `number`."""
        raise NotImplementedError

    def in_team(self, team: str, user: str) -> bool:
        """Whether `user` belongs to `team` ("org/team"; on GitLab a group path)."""
        raise NotImplementedError

    # -- for subclasses ------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        """Headers that authenticate (and version) every request."""
        return {}

    @staticmethod
    def check_reaction(reaction: str) -> None:
        if reaction not in REACTIONS:
            raise ValueError(f"unknown reaction {reaction!r}; expected one of {', '.join(REACTIONS)}")

    @staticmethod
    def split_team(team: str) -> tuple[str, str]:
        """ "@org/team" or "org/team" -> ("org", "team"); a GitLab subgroup keeps its slashes in the second part."""
        org, _, name = team.lstrip("@").partition("/")
        if not org or not name:
            raise ValueError(f"team {team!r} is not written as @org/team")
        return org, name

    @staticmethod
    def check_state(state: str) -> None:
        if state not in STATES:
            raise ValueError(f"unknown commit state {state!r}; expected one of {', '.join(STATES)}")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        accept: Callable[[requests.Response], bool] | None = None,
    ) -> requests.Response:
        """Send `method path` (relative to the base URL) with retries. Answers below 400, and those
        `accept` approves, are returned; anything else raises ForgeApiError."""
        url = self.base_url + path
        headers = {"User-Agent": f"strom/{__version__}", "Accept": "application/json", **self.auth_headers()}
        status: int | None
        wait: float | None
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.session.request(
                    method, url, json=body, params=params, headers=headers, timeout=self.timeout
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                status, wait = None, self.backoff_wait(attempt)
                failure = f"{self.kind} API {method} {urlsplit(url).path} failed: {_connection_problem(exc)}"
            else:
                if response.status_code < 400 or (accept is not None and accept(response)):
                    return response
                status, wait = response.status_code, self.retry_wait(response, attempt)
                failure = self.describe(method, response)
                if wait is None:
                    break
            if attempt < self.attempts:
                self.sleep(min(max(wait, 0.0), self.max_wait))
        else:
            failure += f" (gave up after {self.attempts} attempts)"
        raise ForgeApiError(self.redact(failure), status)

    def retry_wait(self, response: requests.Response, attempt: int) -> float | None:
        """Seconds to wait before retrying `response`, or None when retrying cannot help."""
        status, headers = response.status_code, response.headers
        rate_limited = status == 403 and (headers.get("X-RateLimit-Remaining") == "0" or "Retry-After" in headers)
        if not (status >= 500 or status == 429 or rate_limited):
            return None
        retry_after = _parse_retry_after(headers.get("Retry-After"))
        if retry_after is not None:
            return retry_after
        reset = headers.get("X-RateLimit-Reset")
        if reset and headers.get("X-RateLimit-Remaining") == "0":
            try:
                return float(reset) - time.time()
            except ValueError:
                pass
        return self.backoff_wait(attempt)

    def backoff_wait(self, attempt: int) -> float:
        return self.backoff * 2.0 ** (attempt - 1)

    def describe(self, method: str, response: requests.Response) -> str:
        text = " ".join(response.text.split())
        if len(text) > BODY_EXCERPT:
            text = text[:BODY_EXCERPT] + "…"
        path = urlsplit(response.url).path
        return f"{self.kind} API {method} {path} answered HTTP {response.status_code}: {text or response.reason}"

    def redact(self, message: str) -> str:
        return message.replace(self.token, "***") if self.token else message


def _connection_problem(exc: Exception) -> str:
    """The innermost useful reason of a requests connection error or timeout."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return f"{type(exc).__name__}: {reason or exc}"


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError):
        return None


class ApiOptions(TypedDict, total=False):
    """The keyword arguments of `ForgeApi` (what `api_for` passes on)."""

    session: requests.Session | None
    attempts: int
    backoff: float
    max_wait: float
    timeout: float
    sleep: Callable[[float], Any]


def api_for(kind: str, base_url: str, token: str | None, repo: str, **kwargs: Unpack[ApiOptions]) -> ForgeApi:
    """The API client for a forge `kind`: github, gitlab, gitea or forgejo."""
    cls: type[ForgeApi]
    if kind == "github":
        from .github_api import GitHubApi

        cls = GitHubApi
    elif kind == "gitlab":
        from .gitlab_api import GitLabApi

        cls = GitLabApi
    elif kind == "gitea":
        from .gitea_api import GiteaApi

        cls = GiteaApi
    elif kind == "forgejo":
        from .gitea_api import ForgejoApi

        cls = ForgejoApi
    else:
        raise ForgeError(f"unknown forge kind {kind!r}; expected one of {', '.join(KINDS)}")
    return cls(base_url, token, repo, **kwargs)
