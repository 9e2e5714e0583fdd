"""Gitea and Forgejo REST API (/api/v1): GitHub's statuses, issue comments and reactions; their own auth,
roles and teams."""

from __future__ import annotations

from .api import path_part
from .github_api import GitHubApi

__all__ = ["ForgejoApi", "GiteaApi"]

WRITE_PERMISSIONS = ("admin", "owner", "write")


class GiteaApi(GitHubApi):
    """`base_url` is https://<host>/api/v1. Statuses and comments take GitHub's requests."""

    kind = "gitea"

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"} if self.token else {}

    def can_write(self, user: str) -> bool:
        response = self.request(
            "GET",
            f"/repos/{self.repo}/collaborators/{path_part(user)}/permission",
            accept=lambda r: r.status_code == 404,
        )
        return response.status_code != 404 and response.json().get("permission") in WRITE_PERMISSIONS

    def in_team(self, team: str, user: str) -> bool:
        """Gitea names teams per organisation: find the team's id, then ask for the member."""
        org, name = self.split_team(team)
        found = self.request("GET", f"/orgs/{path_part(org)}/teams/search", params={"q": name}).json()
        teams = found.get("data", []) if isinstance(found, dict) else found
        team_id = next((t["id"] for t in teams if str(t.get("name", "")).lower() == name.lower()), None)
        if team_id is None:
            return False
        response = self.request(
            "GET", f"/teams/{path_part(team_id)}/members/{path_part(user)}", accept=lambda r: r.status_code == 404
        )
        return response.status_code != 404


class ForgejoApi(GiteaApi):
    """Forgejo speaks Gitea's API."""

    kind = "forgejo"
