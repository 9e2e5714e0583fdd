"""Redis persistence: runs and their indexes, definitions, logs, workers, events, timers.

Names are imported on first use (a worker needs logs and the registry, not the definitions).
"""
from ..lazy import lazy_exports

_EXPORTS = {
    "connect": "connection", "Definitions": "definitions", "JobStore": "jobs", "RunFilter": "jobs",
    "RunPage": "jobs", "LogStore": "logs", "LogLine": "logs", "WorkerInfo": "workers", "WorkerRegistry": "workers",
    "keys": None,
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
