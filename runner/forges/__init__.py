"""Forges (GitHub, GitLab, Gitea/Forgejo): verify and parse what they send, report back what happened.

Verifying and parsing are pure functions of the request (no network); reporting talks to the
forge's API at a configurable base URL.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "RepoEvent": "event", "PullRequest": "event", "Comment": "event",
    "ForgeError": "errors", "VerificationError": "errors", "PayloadError": "errors",
    "parser_for": "registry", "FORGES": "registry",
    "ForgeApi": "api", "ForgeApiError": "api", "api_for": "api",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
