"""A small client of the Strom API, for the CLI (and scripts): token auth, errors as StromErrors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import requests

from .errors import StromError

__all__ = ["ApiError", "Client"]


class ApiError(StromError):
    def __init__(self, status: int, message: str, body: Any = None):
        super().__init__(message)
        self.status_hint = status
        self.body = body


class Client:
    def __init__(self, url: str, token: str | None, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout

    def _request(self, method: str, path: str, **kwargs) -> Any:
        try:
            response = self.session.request(
                method, self.url + path, timeout=kwargs.pop("timeout", self.timeout), **kwargs
            )
        except requests.ConnectionError as exc:
            raise ApiError(
                0, f"cannot reach the Strom server at {self.url}; is it running? (set --server or STROM_URL)"
            ) from exc
        if response.status_code >= 400:
            try:
                body = response.json()
                error = body.get("error", {})
                message = error.get("message", response.text)
                if error.get("fields"):
                    message += "\n" + "\n".join(f"  {k}: {v}" for k, v in error["fields"].items())
                if error.get("problems"):
                    message += "\n" + "\n".join(
                        f"  {p['file']}:{p['line']}:{p['column']}: {p['message']}" for p in error["problems"]
                    )
            except ValueError:
                body, message = None, response.text.strip() or response.reason
            raise ApiError(response.status_code, f"{message} (HTTP {response.status_code})", body)
        if response.headers.get("Content-Type", "").startswith("application/json"):
            return response.json()
        return response.text

    def artifacts(self, run_id: str) -> dict:
        return self._request("GET", f"/api/runs/{run_id}/artifacts")

    def upload_state(self, workspace: str, task: str, archive: bytes, data: dict | None, mode: str) -> dict:
        params = {"mode": mode, **({"data": json.dumps(data)} if data is not None else {})}
        return self._request(
            "POST",
            f"/api/workspaces/{workspace}/tasks/{task}/state",
            params=params,
            data=archive,
            headers={"Content-Type": "application/gzip"},
        )

    def task_state(self, workspace: str, task: str) -> dict:
        return self._request("GET", f"/api/workspaces/{workspace}/tasks/{task}/state")

    def download(self, path: str, target) -> int:
        """Stream the file at API path `path` into the open binary file `target`; its size."""
        try:
            response = self.session.get(self.url + path, stream=True, timeout=self.timeout)
        except requests.ConnectionError as exc:
            raise ApiError(0, f"cannot reach the Strom server at {self.url}: {exc}") from exc
        with response:
            if response.status_code >= 400:
                try:
                    message = response.json().get("error", {}).get("message", response.text)
                except ValueError:
                    message = response.text.strip() or response.reason
                raise ApiError(response.status_code, f"{message} (HTTP {response.status_code})")
            size = 0
            for chunk in response.iter_content(1 << 16):
                target.write(chunk)
                size += len(chunk)
        return size

    def execute(self, workspace: str, task: str, inputs: dict) -> dict:
        return self._request("POST", f"/api/workspaces/{workspace}/tasks/{task}/execute", json={"input": inputs})

    def exec(self, workspace: str, request: dict) -> dict:
        """Start an ad-hoc run: `request` has `command` (a list) or `script`, and optionally `name`, `ref`,
        `timeout`, `env`, `ability`, `tags`, `image`."""
        return self._request("POST", f"/api/workspaces/{workspace}/exec", json=request)

    def batch(self, workspace: str, pattern: str, inputs: dict) -> dict:
        """Start every task `pattern` matches: {"runs": [...], "refused": {task: why}}."""
        return self._request("POST", f"/api/workspaces/{workspace}/batch", json={"pattern": pattern, "input": inputs})

    def workspaces(self) -> dict:
        return self._request("GET", "/api/workspaces")

    def runs(self, **filters) -> dict:
        return self._request("GET", "/api/runs", params={k: v for k, v in filters.items() if v is not None})

    def events(self, **filters) -> dict:
        return self._request("GET", "/api/events", params={k: v for k, v in filters.items() if v is not None})

    def event(self, event_id: str) -> dict:
        return self._request("GET", f"/api/events/{event_id}")

    def run(self, run_id: str) -> dict:
        return self._request("GET", f"/api/runs/{run_id}")

    def cancel(self, run_id: str, reason: str | None = None) -> dict:
        return self._request("POST", f"/api/runs/{run_id}/cancel", json={"reason": reason} if reason else {})

    def tasks(self, workspace: str) -> dict:
        return self._request("GET", f"/api/workspaces/{workspace}/tasks")

    def triggers(self, workspace: str) -> dict:
        return self._request("GET", f"/api/workspaces/{workspace}/triggers")

    def pause(self, workspace: str, kind: str, name: str, reason: str | None = None, resume: bool = False) -> dict:
        """Pause (or `resume`) the task or trigger (`kind`) `name`."""
        action = "resume" if resume else "pause"
        body = {"reason": reason} if reason else {}
        return self._request("POST", f"/api/workspaces/{workspace}/{kind}s/{name}/{action}", json=body)

    def rerun(self, run_id: str) -> dict:
        return self._request("POST", f"/api/runs/{run_id}/rerun")

    def decide(self, run_id: str, step: str, approved: bool, reason: str | None = None) -> dict:
        return self._request(
            "POST", f"/api/runs/{run_id}/steps/{step}/approve", json={"approved": approved, "rejection_reason": reason}
        )

    def answer(self, run_id: str, step: str, answer: str) -> dict:
        return self._request("POST", f"/api/runs/{run_id}/steps/{step}/answer", json={"answer": answer})

    def logs(self, run_id: str, step: str | None = None) -> list[dict]:
        path = f"/api/runs/{run_id}/steps/{step}/logs" if step else f"/api/runs/{run_id}/logs"
        return self._request("GET", path)["lines"]

    def follow(self, run_id: str, step: str | None = None, after: str | None = None) -> Iterator[tuple[str, dict]]:
        """(event, data) pairs from the live log stream, until the run (or step) ends. The server
        closes long streams now and then; the client reconnects from the last event it saw."""
        path = f"/api/runs/{run_id}/steps/{step}/logs" if step else f"/api/runs/{run_id}/logs"
        while True:
            headers = {"Accept": "text/event-stream"}
            if after:
                headers["Last-Event-ID"] = after
            with self.session.get(
                self.url + path, params={"follow": "1"}, headers=headers, stream=True, timeout=(10, None)
            ) as response:
                if response.status_code >= 400:
                    raise ApiError(response.status_code, response.text)
                event = "message"
                data: list[str] = []
                for raw in response.iter_lines(decode_unicode=True):
                    if raw is None:
                        continue
                    if raw == "":
                        if data:
                            yield event, json.loads("\n".join(data))
                            if event == "end":
                                return
                        event, data = "message", []
                    elif raw.startswith(":"):
                        continue
                    elif raw.startswith("id:"):
                        after = raw[3:].strip()
                    elif raw.startswith("event:"):
                        event = raw[6:].strip()
                    elif raw.startswith("data:"):
                        data.append(raw[5:].strip())
