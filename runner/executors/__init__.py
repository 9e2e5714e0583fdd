"""Executors run rendered steps: locally (subprocess in a sandbox), over HTTP, and more.

Names are imported on first use: a worker that runs only scripts never loads the HTTP client.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "Executor": "base", "LogSink": "base", "MaskedLogs": "base", "StepResult": "base", "execute": "base",
    "HttpExecutor": "http", "LocalExecutor": "local", "LocalSettings": "local",
    "Unavailable": "unavailable", "missing_runner": "unavailable", "DockerExecutor": "docker",
    "NotifyExecutor": "notify", "executor_key": "base",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
