"""The REST API under /api: workspaces, tasks, runs, logs (with live follow), approvals."""
from flask import Blueprint

bp = Blueprint("api", __name__, url_prefix="/api")

from . import events, health, logs, runs, snapshots, workspaces  # noqa: E402,F401  (views register on bp)

__all__ = ["bp"]
