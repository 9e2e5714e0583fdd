"""Where repository events come in: forge webhooks, generic hooks, Alertmanager notifications and `git push`
over smart HTTP."""

from .alerts import bp as alerts
from .forges import bp as forges
from .git import bp as git
from .hooks import bp as hooks

__all__ = ["alerts", "forges", "git", "hooks"]
