"""Answering approval steps in `strom run`: pre-answers from flags, else a question on the terminal."""

from __future__ import annotations

import getpass
import threading
from collections.abc import Callable

from ..engine.commands import AwaitApproval

__all__ = ["Approvals", "local_user"]


def local_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database (a container): a name is still needed
        return "local"


class Approvals:
    def __init__(
        self,
        approve: set[str] | None = None,
        reject: dict[str, str | None] | None = None,
        interactive: bool = False,
        prompt: Callable[[AwaitApproval], tuple[bool, str | None]] | None = None,
        user: str | None = None,
    ):
        self.approve = set(approve or ())
        self.reject = dict(reject or {})
        self.interactive = interactive and prompt is not None
        self.prompt = prompt
        self.user = user or local_user()
        self.cancelled = threading.Event()

    def _matches(self, names, step: str) -> str | None:
        base = step.split("[")[0]
        for name in (step, base, "*"):
            if name in names:
                return name
        return None

    def ask(self, command: AwaitApproval, answer: Callable[[bool, str, str | None], None]) -> None:
        """Decide, then call `answer(approved, by, reason)` once (or not at all after cancel())."""
        name = self._matches(self.reject, command.step)
        if name is not None:
            answer(False, self.user, self.reject[name] or "rejected with --reject")
            return
        if self._matches(self.approve, command.step) is not None:
            if command.required > 1:
                answer(False, "strom", f"needs {command.required} distinct approvals; a local run can give one")
                return
            answer(True, self.user, None)
            return
        if not self.interactive or self.prompt is None:  # interactive needs a prompt
            answer(
                False,
                "strom",
                f"nobody to ask: this is not a terminal; pass --approve {command.step} or --reject {command.step}",
            )
            return
        approved, reason = self.prompt(command)
        if not self.cancelled.is_set():
            answer(approved, self.user, reason)

    def cancel(self) -> None:
        self.cancelled.set()
