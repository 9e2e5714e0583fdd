"""`type: http` steps: call an API; the response's JSON becomes the step output.

Each step gets a session of its own (no cookies or connections shared with other steps' requests)
whose connections may reach only allowed destinations (runner/executors/destinations.py), and no
network at all when its run may not have one (an untrusted pull request's, unless its workspace
allows it). The response is read up to MAX_RESPONSE bytes.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

from ..engine.status import StepStatus
from ..engine.work import StepWork
from ..spec.payloads import HttpPayload
from .base import LogSink, StepResult
from .destinations import Destinations, guarded_session

__all__ = ["DEFAULT_TIMEOUT", "MAX_RESPONSE", "HttpExecutor"]

DEFAULT_TIMEOUT = 30.0
MAX_RESPONSE = 10 * 1024 * 1024


class HttpExecutor:
    def __init__(self, destinations: Destinations | None = None):
        self.destinations = destinations or Destinations()

    def run(self, work: StepWork, workspace: Path, logs: LogSink, cancel: threading.Event) -> StepResult:
        if cancel.is_set():
            return StepResult(StepStatus.CANCELLED, error="cancelled")
        if not work.network:
            return StepResult(
                StepStatus.FAILED,
                error="this run may not use the network (an untrusted pull "
                "request's; the workspace's pull_requests: { network: true } "
                "allows it)",
            )
        call = work.payload_as(HttpPayload)
        kwargs = {"headers": dict(call.headers), "timeout": work.timeout or DEFAULT_TIMEOUT, "stream": True}
        if call.has_json:
            kwargs["json"] = call.json_body
        elif call.body is not None:
            kwargs["data"] = call.body.encode()
        logs.line("strom", f"{call.method} {call.url}")
        import requests

        started = time.monotonic()
        try:
            with guarded_session(self.destinations) as session:
                response = session.request(call.method, call.url, **kwargs)
                body = _read(response)
        except requests.Timeout:
            return StepResult(StepStatus.TIMED_OUT, error=f"{call.method} {call.url} timed out")
        except requests.RequestException as exc:
            return StepResult(StepStatus.FAILED, error=f"{call.method} {call.url} failed: {_reason(exc)}")
        elapsed = (time.monotonic() - started) * 1000
        logs.line("strom", f"HTTP {response.status_code} {response.reason} ({elapsed:.0f} ms)")
        text = body.decode(response.encoding or "utf-8", "replace")
        for line in text.splitlines()[:200]:
            logs.line("stdout", line)
        try:
            output = json.loads(text)
        except (ValueError, RecursionError):
            output = {"status": response.status_code, "body": text}
        expected = call.expected_status
        ok = response.status_code in expected if expected else 200 <= response.status_code < 300
        if not ok:
            want = ", ".join(map(str, expected)) if expected else "2xx"
            snippet = text.strip().replace("\n", " ")[:200]
            return StepResult(
                StepStatus.FAILED,
                output=output,
                error=f"HTTP {response.status_code} from {call.url} (expected {want}): {snippet}",
            )
        return StepResult(StepStatus.SUCCEEDED, output=output)


def _read(response) -> bytes:
    """The body, refused beyond MAX_RESPONSE bytes."""
    import requests

    chunks, size = [], 0
    for chunk in response.iter_content(65536):
        size += len(chunk)
        if size > MAX_RESPONSE:
            raise requests.RequestException(f"the response is larger than {MAX_RESPONSE} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _reason(exc: Exception) -> str:
    """The reason a request failed; for a refused destination, the refusal itself."""
    cause = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(cause) if cause is not None else str(exc)
    marker = "refused: "
    return text[text.index(marker) + len(marker) :] if marker in text else str(exc)
