"""How `strom web` starts gunicorn on the web process's WSGI app (named, not imported: `runner`
never imports `webhooks`). The command replaces itself with gunicorn, so the master process holds
only gunicorn and the app is loaded in the workers. Workers are gevent workers (webhooks/worker.py):
a connection, a slow one or a live log stream, costs a greenlet, not a thread.
"""

from __future__ import annotations

import os
import sys

from ..config import Config

__all__ = ["SINGLE_SERVER", "WSGI_APP", "exec_gunicorn", "exec_single", "gunicorn_argv"]

WSGI_APP = "webhooks.wsgi:app"
WORKER_CLASS = "webhooks.worker.StromWorker"
SINGLE_SERVER = "webhooks.serve"  # gevent's WSGI server in one process (`strom web --single-process`)


def gunicorn_argv(config: Config, bind: str | None = None, access_log: bool = False) -> list[str]:
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--worker-class",
        WORKER_CLASS,
        "--workers",
        str(config.web_workers),
        "--worker-connections",
        str(config.web_connections),
        "--bind",
        bind or config.listen,
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--keep-alive",
        str(int(config.web_read_timeout)),
        "--log-level",
        "warning",
        "--error-logfile",
        "-",
        "--name",
        "strom-web",
    ]
    if access_log:
        argv += ["--access-logfile", "-"]
    return argv + [WSGI_APP]


def exec_gunicorn(config: Config, bind: str | None = None, access_log: bool = False) -> None:
    argv = gunicorn_argv(config, bind, access_log)
    os.execv(argv[0], argv)


def exec_single(config: Config, bind: str | None = None, access_log: bool = False) -> None:
    """Replace this process with one that serves the app itself (gevent's WSGI server, no gunicorn master)."""
    argv = [sys.executable, "-m", SINGLE_SERVER, bind or config.listen] + (["--access-log"] if access_log else [])
    os.execv(argv[0], argv)
