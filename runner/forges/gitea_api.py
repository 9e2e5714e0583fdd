"""Gitea and Forgejo REST API (/api/v1): commit statuses, issue comments, permissions."""
from __future__ import annotations

from .api import ForgeApi, cap_description, path_part

__all__ = ["GiteaApi", "ForgejoApi"]

STATE_MAP = {"pending": "pending", "running": "pending", "success": "success",
             "failure": "failure", "error": "error", "cancelled": "error"}
WRITE_PERMISSIONS = ("admin", "owner", "write")


class GiteaApi(ForgeApi):
    """`base_url` is https://<host>/api/v1."""

    kind = "gitea"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def set_status(self, sha: str, state: str, context: str, description: str, target_url: str | None) -> None:
        self.check_state(state)
        body = {"state": STATE_MAP[state], "description": cap_description(description), "context": context}
        if target_url is not None:
            body["target_url"] = target_url
        self.request("POST", f"/repos/{self.repo}/statuses/{path_part(sha)}", body)

    def create_comment(self, number: int, body: str) -> str:
        response = self.request("POST", f"/repos/{self.repo}/issues/{int(number)}/comments", {"body": body})
        return str(response.json()["id"])

    def edit_comment(self, number: int, comment_id: str, body: str) -> None:
        self.request("PATCH", f"/repos/{self.repo}/issues/comments/{path_part(comment_id)}", {"body": body})

    def can_write(self, user: str) -> bool:
        response = self.request("GET", f"/repos/{self.repo}/collaborators/{path_part(user)}/permission",
                                accept=lambda r: r.status_code == 404)
        return response.status_code != 404 and response.json().get("permission") in WRITE_PERMISSIONS


class ForgejoApi(GiteaApi):
    """Forgejo speaks Gitea's API."""

    kind = "forgejo"
