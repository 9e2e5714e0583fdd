"""The pure core of a run: state in, decisions out. Imports no I/O library (see tests)."""
from .commands import (AwaitApproval, CancelChild, CancelStep, Command, DispatchStep, HookCall, JobFinished,
                       RetryJob, RunHooks, StartChild)
from .context import RunContext
from .core import LOST_GRACE, MAX_DEPTH, Decision, advance
from .events import ApprovalDecision, Cancel, ChildFinished, Event, Start, StepFinished, StepStarted, Tick
from .jobs import HOOK_TASK_PREFIX, hook_task, new_job, new_job_id
from .state import JobState, StepRun, instance_name, split_instance
from .status import JobStatus, StepStatus
from .work import StepWork

__all__ = [
    "AwaitApproval", "CancelChild", "CancelStep", "Command", "DispatchStep", "HookCall", "JobFinished",
    "RetryJob", "RunHooks", "StartChild", "RunContext", "LOST_GRACE", "MAX_DEPTH", "Decision", "advance",
    "ApprovalDecision", "Cancel", "ChildFinished", "Event", "Start", "StepFinished", "StepStarted", "Tick",
    "HOOK_TASK_PREFIX", "hook_task", "new_job", "new_job_id", "JobState", "StepRun", "instance_name",
    "split_instance", "JobStatus", "StepStatus", "StepWork",
]
