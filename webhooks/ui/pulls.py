"""A pull request's page: what Strom knows of it, whether it is trusted, all its runs across its commits, and
its gates with who may approve them."""

from __future__ import annotations

import json

from flask import abort, render_template

from runner.gitops.pulls import Pulls
from runner.gitops.reporting import gates_of
from runner.gitops.trust import Trust
from runner.store import RunFilter

from ..access.session import page
from ..context import current_service
from . import bp

RUNS = 100


@bp.get("/pulls/<workspace>/<int:number>")
@page("read")
def pull(workspace: str, number: int):
    service = current_service()
    ws = service.config.workspaces.get(workspace)
    if ws is None:
        abort(404, description=f"no workspace {workspace!r}")
    pulls = Pulls(service.redis, workspace)
    facts = json.loads(pulls.get(number, "facts") or "{}")
    runs = service.runs.list(RunFilter(workspace=workspace, pr=number), limit=RUNS).runs
    if not facts and not runs:
        abort(404, description=f"Strom knows nothing of pull request #{number} in {workspace!r}")
    head = facts.get("head_sha") or (runs[0].commit if runs else None)
    trust = Trust(service, ws)
    if not facts.get("from_fork") and ws.forge != "gitea":
        trusted = "trusted: a branch of the repository itself"
    elif head and trust.approved(number, head):
        trusted = "trusted: /ok-to-test was given for its head"
    else:
        trusted = "untrusted: its runs wait for /ok-to-test from someone with write access"
    gates = [(state, gate) for state in runs for gate in gates_of(state) if gate["status"] == "waiting"]
    waiting = pulls.get(number, "waiting")
    return render_template(
        "pull.html",
        workspace=workspace,
        number=number,
        facts=facts,
        runs=runs,
        head=head,
        trusted=trusted,
        gates=gates,
        waiting=waiting,
    )
