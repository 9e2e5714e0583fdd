"""`strom web --single-process`: the web app served by gevent's own WSGI server in one process, without
gunicorn's master (what `strom up` runs: one process, and its memory, less; `strom up` starts it again if it
exits). Run as `python -m webhooks.serve HOST:PORT [--access-log]`: gevent patches the standard library before
anything else is imported, as gunicorn's gevent workers do (importing this module patches nothing), and a
connection is held to `web.read_timeout` as webhooks/worker.py holds it.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str]) -> None:
    from gevent import monkey

    monkey.patch_all()

    import signal

    import gevent
    from gevent.pool import Pool
    from gevent.pywsgi import WSGIHandler, WSGIServer

    from .context import current_service
    from .wsgi import app

    config = current_service(app).config
    timeout, connections = config.web_read_timeout, config.web_connections
    host, _, port = argv[0].rpartition(":")

    class Handler(WSGIHandler):
        def handle(self):
            self.socket.settimeout(timeout)  # a slow or silent client holds nothing for longer
            super().handle()

    server = WSGIServer(
        (host.strip("[]") or "127.0.0.1", int(port)),
        app,
        handler_class=Handler,
        spawn=Pool(connections),
        log=sys.stdout if "--access-log" in argv else None,
        error_log=sys.stderr,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, lambda: server.stop(timeout=5))
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
