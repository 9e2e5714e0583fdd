"""The pure core of a run: state in, decisions out. Imports no I/O library (see tests).

Names are imported on first use, so a worker that only needs StepWork does not load templating.
"""

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

if TYPE_CHECKING:  # the exports; each is imported on first use (runner/lazy.py)
    from .commands import (
        AwaitApproval,
        CancelChild,
        CancelStep,
        Command,
        DispatchStep,
        HookCall,
        KeepState,
        RetryRun,
        RunFinished,
        RunHooks,
        StartChild,
    )
    from .context import RunContext
    from .core import LOST_GRACE, MAX_DEPTH, Decision, advance
    from .events import (
        EVENT_TYPES,
        ApprovalDecision,
        Cancel,
        ChildFinished,
        Event,
        Start,
        StepAbandoned,
        StepFinished,
        StepStarted,
        Tick,
    )
    from .runs import HOOK_TASK_PREFIX, hook_task, new_run, new_run_id
    from .state import RunState, StepRun, instance_name, split_instance
    from .status import RunStatus, StepStatus
    from .work import StepWork

__getattr__, __dir__, __all__ = lazy_exports(__name__)
