"""Gitea and Forgejo REST API (/api/v1): GitHub's statuses and issue comments, their own auth and roles."""
from __future__ import annotations

from .api import path_part
from .github_api import GitHubApi

__all__ = ["GiteaApi", "ForgejoApi"]

WRITE_PERMISSIONS = ("admin", "owner", "write")


class GiteaApi(GitHubApi):
    """`base_url` is https://<host>/api/v1. Statuses and comments take GitHub's requests."""

    kind = "gitea"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def can_write(self, user: str) -> bool:
        response = self.request("GET", f"/repos/{self.repo}/collaborators/{path_part(user)}/permission",
                                accept=lambda r: r.status_code == 404)
        return response.status_code != 404 and response.json().get("permission") in WRITE_PERMISSIONS


class ForgejoApi(GiteaApi):
    """Forgejo speaks Gitea's API."""

    kind = "forgejo"
