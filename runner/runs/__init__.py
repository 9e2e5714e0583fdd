"""The run library: create runs, apply events to them, and carry out what the engine decides.

Everything that starts or changes a run goes through here: the gitops intake, ChatOps, the web API and
UI, the CLI, and the orchestrator loop of `runner/service/`. Names are imported on first use.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from . import messages
    from .checkout import Checkout, Checkouts
    from .creation import (
        Batch,
        NotFound,
        create_child,
        create_hooks,
        exec_run,
        execute,
        load_definitions,
        rerun,
        retry,
        start,
        start_batch,
        trigger_inputs,
    )
    from .orchestrator import Conflict, Orchestrator, RunNotFound
    from .pausing import set_paused
    from .service import Service

__getattr__, __dir__, __all__ = lazy_exports(__name__)
