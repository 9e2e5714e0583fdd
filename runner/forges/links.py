"""Links to a forge's web pages, from its API base URL (what the workspace configures)."""

from __future__ import annotations

__all__ = ["commit_url", "web_base"]


def web_base(kind: str | None, api: str | None) -> str | None:
    """https://api.github.com -> https://github.com; https://host/api/v3|v4|v1 -> https://host."""
    if not kind or not api:
        return None
    api = api.rstrip("/")
    if kind == "github" and api == "https://api.github.com":
        return "https://github.com"
    for suffix in ("/api/v3", "/api/v4", "/api/v1"):
        if api.endswith(suffix):
            return api[: -len(suffix)]
    return None


def commit_url(kind: str | None, api: str | None, repo: str | None, sha: str | None) -> str | None:
    base = web_base(kind, api)
    if not base or not repo or not sha:
        return None
    return f"{base}/{repo}/-/commit/{sha}" if kind == "gitlab" else f"{base}/{repo}/commit/{sha}"
