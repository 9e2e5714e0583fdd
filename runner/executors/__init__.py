"""Executors run rendered steps: locally (subprocess in a sandbox), over HTTP, and more.

Names are imported on first use: a worker that runs only scripts never loads the HTTP client.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from .base import Executor, LogSink, MaskedLogs, StepResult, execute, executor_key
    from .docker import DockerExecutor
    from .http import HttpExecutor
    from .local import LocalExecutor, LocalSettings
    from .notify import NotifyExecutor
    from .unavailable import Unavailable, missing_runner

__getattr__, __dir__, __all__ = lazy_exports(__name__)
