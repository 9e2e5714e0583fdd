"""`strom run`: run a task of a local workspace to completion, with the service's semantics."""

from .approvals import Approvals
from .display import Display
from .driver import LocalRunner, RunOutcome

__all__ = ["Approvals", "Display", "LocalRunner", "RunOutcome"]
