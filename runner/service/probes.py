"""Liveness and readiness probes of a scheduler or worker process over HTTP (`--health-port`).

    GET /livez    200 while every loop of the process runs; 503 once one has died (the process exits)
    GET /readyz   200 while, besides, Redis answers the process; 503 during an outage
    GET /health   the process's health as JSON: its loops, their states and Redis

A liveness probe restarts a process that cannot heal itself; a Redis outage is not such a case,
so it fails only readiness.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .supervision import Health

__all__ = ["ProbeServer"]


class ProbeServer:
    def __init__(self, health: Health, port: int, host: str = "0.0.0.0"):
        self.health = health
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="strom-probes", daemon=True)

    def start(self) -> ProbeServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str) -> tuple[int, dict]:
        record = self.health.snapshot()
        if path == "/livez":
            return (200 if record["ok"] else 503), {"status": "alive" if record["ok"] else "dead"}
        if path == "/readyz":
            ready = record["ok"] and record["redis"] == "ok"
            return (200 if ready else 503), {"status": "ready" if ready else "unavailable", "redis": record["redis"]}
        if path == "/health":
            return 200, record
        return 404, {"error": "try /livez, /readyz or /health"}

    def _handler(self):
        probes = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                status, body = probes.answer(self.path.split("?", 1)[0])
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):  # probes every few seconds are not worth a log line
                pass

        return Handler
