"""The `git` template context of a local directory (sha, branch, message, author), when it is a repository."""

from __future__ import annotations

from pathlib import Path

__all__ = ["git_context"]


def git_context(path: Path) -> dict | None:
    try:
        from git import InvalidGitRepositoryError, NoSuchPathError, Repo
    except ImportError:  # git executable missing
        return None
    try:
        repo = Repo(path, search_parent_directories=True)
        commit = repo.head.commit
    except (InvalidGitRepositoryError, NoSuchPathError, ValueError):
        return None
    except Exception:  # noqa: BLE001 - a repository without commits, or a broken one: no git context
        return None
    try:
        branch = None if repo.head.is_detached else repo.active_branch.name
    except TypeError:
        branch = None
    tags = [tag.name for tag in repo.tags if tag.commit == commit] if len(repo.tags) < 2000 else []
    message = commit.message if isinstance(commit.message, str) else commit.message.decode("utf-8", "replace")
    return {
        "sha": commit.hexsha,
        "short_sha": commit.hexsha[:7],
        "ref": f"refs/heads/{branch}" if branch else (f"refs/tags/{tags[0]}" if tags else commit.hexsha),
        "branch": branch or "",
        "tag": tags[0] if tags else "",
        "message": message.strip(),
        "title": message.strip().splitlines()[0] if message.strip() else "",
        "author": commit.author.name,
        "author_email": commit.author.email or "",
        "dirty": repo.is_dirty(untracked_files=False),
    }
