"""Git: bare mirrors per repository, immutable per-commit snapshots, hosted repositories."""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from .hosted import HostedRepos
    from .mirrors import ZERO_SHA, GitError, Mirror
    from .snapshots import Snapshots

__getattr__, __dir__, __all__ = lazy_exports(__name__)
