"""Git: bare mirrors per repository, immutable per-commit snapshots, hosted repositories."""
from ..lazy import lazy_exports

_EXPORTS = {"Mirror": "mirrors", "GitError": "mirrors", "ZERO_SHA": "mirrors", "Snapshots": "snapshots",
            "HostedRepos": "hosted"}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
