"""How `strom web` starts gunicorn on the web process's WSGI app (named, not imported: `runner`
never imports `webhooks`). The command replaces itself with gunicorn, so the master process holds
only gunicorn and the app is loaded in the workers; threads serve live log streams.
"""
from __future__ import annotations

import os
import sys

from ..config import Config

__all__ = ["gunicorn_argv", "exec_gunicorn", "WSGI_APP"]

WSGI_APP = "webhooks.wsgi:app"


def gunicorn_argv(config: Config, bind: str | None = None, access_log: bool = False) -> list[str]:
    argv = [sys.executable, "-m", "gunicorn", "--worker-class", "gthread",
            "--workers", str(config.web_workers), "--threads", str(config.web_threads),
            "--bind", bind or config.listen, "--timeout", "0", "--graceful-timeout", "5", "--keep-alive", "5",
            "--log-level", "warning", "--error-logfile", "-", "--name", "strom-web"]
    if access_log:
        argv += ["--access-logfile", "-"]
    return argv + [WSGI_APP]


def exec_gunicorn(config: Config, bind: str | None = None, access_log: bool = False) -> None:
    argv = gunicorn_argv(config, bind, access_log)
    os.execv(argv[0], argv)
