"""GitLab (gitlab.com and self-hosted) REST API v4: commit statuses, merge request notes and their award
emoji, project and group membership."""

from __future__ import annotations

import requests

from .api import ForgeApi, cap_description, path_part

__all__ = ["GitLabApi"]

STATE_MAP = {
    "pending": "pending",
    "running": "running",
    "success": "success",
    "failure": "failed",
    "error": "failed",
    "cancelled": "canceled",
}
DEVELOPER = 30
EMOJI = {"+1": "thumbsup", "-1": "thumbsdown", "confused": "confused", "eyes": "eyes", "rocket": "rocket"}


def _unchanged(response: requests.Response) -> bool:
    """GitLab refuses to move a status to the state it already has; nothing is left to do then."""
    return response.status_code == 400 and "Cannot transition status" in response.text


class GitLabApi(ForgeApi):
    """`base_url` is https://<host>/api/v4; `repo` is the project's full path (subgroups allowed)."""

    kind = "gitlab"

    @property
    def project(self) -> str:
        return path_part(self.repo)

    def auth_headers(self) -> dict[str, str]:
        return {"PRIVATE-TOKEN": self.token} if self.token else {}

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None) -> None:
        self.check_state(state)
        body = {"state": STATE_MAP[state], "name": context, "description": cap_description(description)}
        if target_url is not None:
            body["target_url"] = target_url
        self.request("POST", f"/projects/{self.project}/statuses/{path_part(sha)}", body, accept=_unchanged)

    def create_comment(self, number: int, body: str) -> str:
        response = self.request("POST", f"/projects/{self.project}/merge_requests/{int(number)}/notes", {"body": body})
        return str(response.json()["id"])

    def edit_comment(self, number: int, comment_id: str, body: str) -> None:
        self.request(
            "PUT",
            f"/projects/{self.project}/merge_requests/{int(number)}/notes/{path_part(comment_id)}",
            {"body": body},
        )

    def user_id(self, user: str) -> int | None:
        users = self.request("GET", "/users", params={"username": user}).json()
        return next((u["id"] for u in users if u.get("username", "").lower() == user.lower()), None)

    def can_write(self, user: str) -> bool:
        user_id = self.user_id(user)
        if user_id is None:
            return False
        response = self.request(
            "GET", f"/projects/{self.project}/members/all/{path_part(user_id)}", accept=lambda r: r.status_code == 404
        )
        return response.status_code != 404 and int(response.json().get("access_level", 0)) >= DEVELOPER

    def react(self, number: int, comment_id: str, reaction: str) -> None:
        self.check_reaction(reaction)
        self.request(
            "POST",
            f"/projects/{self.project}/merge_requests/{int(number)}/notes/{path_part(comment_id)}/award_emoji",
            {"name": EMOJI[reaction]},
        )

    def in_team(self, team: str, user: str) -> bool:
        """GitLab's teams are groups (and subgroups): membership of `@group/sub` (inherited counts)."""
        org, rest = self.split_team(team)
        user_id = self.user_id(user)
        if user_id is None:
            return False
        response = self.request(
            "GET",
            f"/groups/{path_part(org + '/' + rest)}/members/all/{path_part(user_id)}",
            accept=lambda r: r.status_code == 404,
        )
        return response.status_code != 404
