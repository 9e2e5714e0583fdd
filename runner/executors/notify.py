"""`type: notify` steps: send the rendered title and message to the named channels.

A delivery that fails is written to the step's log and counted, and the step still succeeds:
a notification never changes a run's result. The output lists every delivery.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..masking import Masker
from ..notify.messages import step_message
from ..notify.notifier import count_deliveries, describe_delivery
from ..notify.send import deliver, deliver_to
from ..spec.payloads import NotifyPayload
from .base import LogSink, StepResult

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["NotifyExecutor"]


class NotifyExecutor:
    def __init__(self, service: Service, send=deliver):
        self.service = service
        self.settings = service.config.notifications
        self.send = send

    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        if cancel.is_set():
            return StepResult(StepStatus.CANCELLED, error="cancelled")
        if work.untrusted:
            return StepResult(
                StepStatus.FAILED,
                error="notify steps do not run for untrusted pull requests: "
                "their definitions could write anything to your channels",
            )
        notice = work.payload_as(NotifyPayload)
        message = step_message(notice.title, notice.message, work.task, work.workspace, work.step, work.job_id)
        results = deliver_to(self.settings, notice.channels, message.masked(Masker(work.mask)), self.send)
        for result in results:
            logs.line("strom", describe_delivery(result))
        count_deliveries(self.service.redis, results)
        sent = sum(1 for r in results if r.ok)
        return StepResult(
            StepStatus.SUCCEEDED,
            output={"sent": sent, "failed": len(results) - sent, "deliveries": [r.to_dict() for r in results]},
        )
