"""`strom web --single-process`: the web app served by one process's threads, without gunicorn's master; with
`--scheduler` the same process is the scheduler too, and with `--steps N` it runs steps as a worker would. That
whole service in one interpreter is what `strom up` runs.

    python -m webhooks.serve HOST:PORT [--access-log] [--scheduler [--steps N]]

A connection costs a thread while it is open (real threads, so a busy scheduler or step never stalls a
request, as it would under gevent's cooperative switching). At most `web.connections` are served at once; the
next one waits to be taken, and is let go after `web.read_timeout`. A client that sends or reads nothing for
`web.read_timeout` is let go, as webhooks/worker.py does under gunicorn; live log streams write at least every
heartbeat, so they stay.
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from runner.config import load_config
from runner.errors import StromError
from runner.runs.service import Service
from runner.service.lifetime import Parts, serve_until_stopped
from runner.service.supervision import Health

from .app import create_app

__all__ = ["WebServer", "main"]


class _Handler(WSGIRequestHandler):
    server_version = "strom"
    access_log = False

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.access_log:
            super().log_request(code, size)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # an HTTP version the server does not speak is the client's mistake: 400, as gunicorn answers it, not 505
        super().send_error(400 if code == 505 else code, message, explain)


class WebServer(ThreadedWSGIServer):
    """Werkzeug's threaded WSGI server with a cap on the connections served at once and a timeout on every read
    and write; `start()` serves from a thread of its own, `stop()` ends that."""

    def __init__(self, app, host: str, port: int, *, timeout: float, connections: int, access_log: bool = False):
        handler = type("Handler", (_Handler,), {"timeout": timeout, "access_log": access_log})
        super().__init__(host, port, app, handler=handler)
        self.wait_for_slot = timeout
        self._slots = threading.BoundedSemaphore(connections)
        self._thread: threading.Thread | None = None

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(timeout=self.wait_for_slot):
            self.shutdown_request(request)  # waited as long as a silent client is given
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def start(self, health: Health) -> WebServer:
        """Serve from a thread; if serving fails, `health` says so and the process exits, to be started again."""
        self._thread = threading.Thread(target=self._serve, args=(health,), name="strom-web", daemon=True)
        self._thread.start()
        return self

    def _serve(self, health: Health) -> None:
        try:
            self.serve_forever()
        except BaseException as exc:  # noqa: BLE001 - whatever it was, the process must not go on without its web
            health.die("web", f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self.shutdown()  # returns once serve_forever has, which closes the listening socket
            self._thread.join()


def _arguments(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m webhooks.serve")
    parser.add_argument("listen", metavar="HOST:PORT")
    parser.add_argument("--access-log", action="store_true")
    parser.add_argument("--scheduler", action="store_true", help="be the scheduler too")
    parser.add_argument("--steps", type=int, default=0, metavar="N", help="with --scheduler: run N steps at once")
    args = parser.parse_args(argv)
    if not 0 <= args.steps <= 256 or (args.steps and not args.scheduler):
        parser.error("--steps takes N from 0 to 256, and only with --scheduler")
    return args


def main(argv: list[str] | None = None) -> None:
    args = _arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.access_log:
        logging.getLogger("werkzeug").setLevel(logging.INFO)
    try:
        service = Service(load_config())
    except StromError as exc:  # a configuration that cannot be used, Redis that cannot be reached: said plainly
        sys.exit(f"strom: {exc}")
    config = service.config
    host, _, port = args.listen.rpartition(":")
    server = WebServer(
        create_app(service=service),
        host.strip("[]") or "127.0.0.1",
        int(port),
        timeout=config.web_read_timeout,
        connections=config.web_connections,
        access_log=args.access_log,
    )
    if not args.scheduler:
        health = Health("web")
        server.start(health)
        serve_until_stopped(server, health)
        return
    from runner.service.scheduler import Scheduler

    scheduler = Scheduler(service, steps=args.steps)
    scheduler.start()
    server.start(scheduler.health)
    if scheduler.steps is not None:
        print(f"scheduler {scheduler.name} runs steps too: {', '.join(scheduler.steps.queue_names)}", file=sys.stderr)
    serve_until_stopped(Parts(scheduler, server), scheduler.health)  # steps end (or go back) while the web answers


if __name__ == "__main__":
    main()
