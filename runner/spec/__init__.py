"""Load and validate `.strom/*.yaml` workflow definitions."""
from .loader import STROM_DIR, LoadResult, find_files, load_texts, load_workspace
from .model import (
    ABSENT, Action, ActionType, Connection, ConnectionType, Hook, Hooks, InputField, InputType, Language,
    Location, Retry, Runner, Step, Task, Trigger, TriggerType, Workspace,
)
from .problems import Problem, Severity

__all__ = [
    "STROM_DIR", "LoadResult", "find_files", "load_texts", "load_workspace",
    "ABSENT", "Action", "ActionType", "Connection", "ConnectionType", "Hook", "Hooks", "InputField",
    "InputType", "Language", "Location", "Retry", "Runner", "Step", "Task", "Trigger", "TriggerType",
    "Workspace", "Problem", "Severity",
]
