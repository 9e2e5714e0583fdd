"""Where repository events come in: forge webhooks, generic hooks and `git push` over smart HTTP."""

from .forges import bp as forges
from .git import bp as git
from .hooks import bp as hooks

__all__ = ["forges", "git", "hooks"]
