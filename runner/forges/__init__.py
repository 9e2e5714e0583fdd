"""Forges (GitHub, GitLab, Gitea/Forgejo): verify and parse what they send, report back what happened.

Verifying and parsing are pure functions of the request (no network); reporting talks to the
forge's API at a configurable base URL.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from .api import ForgeApi, ForgeApiError, api_for
    from .errors import ForgeError, PayloadError, VerificationError
    from .event import Comment, EventKind, EventSource, PullRequest, RepoEvent
    from .registry import FORGES, parser_for

__getattr__, __dir__, __all__ = lazy_exports(__name__)
