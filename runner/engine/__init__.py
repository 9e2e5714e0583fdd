"""The pure core of a run: state in, decisions out. Imports no I/O library (see tests).

Names are imported on first use, so a worker that only needs StepWork does not load templating.
"""
from ..lazy import lazy_exports

_EXPORTS = {
    **{n: "commands" for n in ("AwaitApproval", "CancelChild", "CancelStep", "Command", "DispatchStep", "HookCall",
                               "JobFinished", "RetryJob", "RunHooks", "StartChild")},
    "RunContext": "context",
    **{n: "core" for n in ("LOST_GRACE", "MAX_DEPTH", "Decision", "advance")},
    **{n: "events" for n in ("EVENT_TYPES", "ApprovalDecision", "Cancel", "ChildFinished", "Event", "Start",
                             "StepAbandoned", "StepFinished", "StepStarted", "Tick")},
    **{n: "jobs" for n in ("HOOK_TASK_PREFIX", "hook_task", "new_job", "new_job_id")},
    **{n: "state" for n in ("JobState", "StepRun", "instance_name", "split_instance")},
    **{n: "status" for n in ("JobStatus", "StepStatus")},
    "StepWork": "work",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
