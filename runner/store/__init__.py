"""Redis persistence: runs and their indexes, definitions, logs, workers, events, timers.

Names are imported on first use (a worker needs logs and the registry, not the definitions).
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from . import keys
    from .connection import connect
    from .definitions import Definitions
    from .logs import LogLine, LogStore
    from .runs import RunFilter, RunPage, RunStore
    from .workers import WorkerInfo, WorkerRegistry

__getattr__, __dir__, __all__ = lazy_exports(__name__)
