"""`type: http` steps: call an API; the response's JSON becomes the step output."""
from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ..engine.status import StepStatus
from ..engine.work import StepWork
from .base import LogSink, StepResult

__all__ = ["HttpExecutor", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = 30.0


class HttpExecutor:
    def __init__(self, session=None):
        self._session = session

    @property
    def session(self):
        if self._session is None:
            import requests  # loaded with the first http step, not with every scheduler
            self._session = requests.Session()
        return self._session

    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        if cancel.is_set():
            return StepResult(StepStatus.CANCELLED, error="cancelled")
        kwargs = {"headers": dict(work.headers), "timeout": work.timeout or DEFAULT_TIMEOUT}
        if work.has_json:
            kwargs["json"] = work.json_body
        elif work.body is not None:
            kwargs["data"] = work.body.encode()
        logs.line("strom", f"{work.method} {work.url}")
        import requests
        started = time.monotonic()
        try:
            response = self.session.request(work.method, work.url, **kwargs)
        except requests.Timeout:
            return StepResult(StepStatus.TIMED_OUT, error=f"{work.method} {work.url} timed out")
        except requests.RequestException as exc:
            return StepResult(StepStatus.FAILED, error=f"{work.method} {work.url} failed: {exc}")
        elapsed = (time.monotonic() - started) * 1000
        logs.line("strom", f"HTTP {response.status_code} {response.reason} ({elapsed:.0f} ms)")
        text = response.text
        for line in text.splitlines()[:200]:
            logs.line("stdout", line)
        try:
            output = response.json()
        except (ValueError, json.JSONDecodeError):
            output = {"status": response.status_code, "body": text}
        expected = work.expected_status
        ok = response.status_code in expected if expected else 200 <= response.status_code < 300
        if not ok:
            want = ", ".join(map(str, expected)) if expected else "2xx"
            snippet = text.strip().replace("\n", " ")[:200]
            return StepResult(StepStatus.FAILED, output=output,
                              error=f"HTTP {response.status_code} from {work.url} (expected {want}): {snippet}")
        return StepResult(StepStatus.SUCCEEDED, output=output)
