"""GitHub (and GitHub Enterprise Server) REST API: commit statuses, issue comments and their reactions,
permissions and team membership."""

from __future__ import annotations

from .api import ForgeApi, cap_description, path_part

__all__ = ["GitHubApi"]

STATE_MAP = {
    "pending": "pending",
    "running": "pending",
    "success": "success",
    "failure": "failure",
    "error": "error",
    "cancelled": "error",
}
WRITE_ROLES = ("admin", "maintain", "write")


class GitHubApi(ForgeApi):
    """`base_url` is https://api.github.com, or https://<host>/api/v3 for Enterprise Server."""

    kind = "github"

    def auth_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

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
        response = self.request(
            "GET",
            f"/repos/{self.repo}/collaborators/{path_part(user)}/permission",
            accept=lambda r: r.status_code == 404,
        )
        if response.status_code == 404:
            return False
        data = response.json()
        return data.get("permission") in WRITE_ROLES or data.get("role_name") in WRITE_ROLES

    def react(self, number: int, comment_id: str, reaction: str) -> None:
        self.check_reaction(reaction)
        self.request(
            "POST", f"/repos/{self.repo}/issues/comments/{path_part(comment_id)}/reactions", {"content": reaction}
        )

    def in_team(self, team: str, user: str) -> bool:
        org, slug = self.split_team(team)
        response = self.request(
            "GET",
            f"/orgs/{path_part(org)}/teams/{path_part(slug)}/memberships/{path_part(user)}",
            accept=lambda r: r.status_code == 404,
        )
        return response.status_code != 404 and response.json().get("state") == "active"
