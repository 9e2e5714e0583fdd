"""`job` triggers: when a run finishes, start the tasks that follow it (same commit, definitions and trust)."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import runs
from ..errors import StromError
from ..runs.checkout import Checkout
from ..runs.orchestrator import Conflict
from ..spec.globs import included
from ..spec.model import TriggerType

if TYPE_CHECKING:
    from ..engine.state import RunState
    from ..runs.service import Service
    from ..spec.model import Trigger

__all__ = ["MAX_CHAIN", "after_run"]

log = logging.getLogger("strom.intake")
MAX_CHAIN = 8  # a chain of job triggers longer than this is a loop
PULL_REQUEST_KINDS = ("pull_request", "comment")
_CARRIED = ("repo", "ref", "branch", "tag", "sha", "before", "actor", "pr", "changed_files")


def after_run(service: Service, job_id: str) -> list[str]:
    state = service.runs.load(job_id)
    if state is None or state.parent_job or state.is_hook or not state.status.terminal:
        return []
    if state.definitions is None:  # as the definitions of a run that names none are not found
        return []
    try:
        loaded = service.definitions.workspace(state.definitions, state.snapshot or ".")
    except (KeyError, StromError):
        return []
    checkout = Checkout(state.definitions, loaded, Path(state.snapshot or "."), state.git, state.commit)
    upstream = dict(state.event or {})
    chain = int(upstream.get("chain", 0)) if upstream.get("kind") == "job" else 0
    origin = upstream.get("origin") or upstream.get("kind")
    branch = (state.git or {}).get("branch") or ""
    started = []
    for trigger in loaded.triggers.values():
        if trigger.type is not TriggerType.JOB or not trigger.enabled or state.task not in trigger.after:
            continue
        if state.status.value not in (trigger.statuses or ("succeeded",)):
            continue
        if trigger.branches and (origin in PULL_REQUEST_KINDS or not included(branch, trigger.branches)):
            continue  # a pull request's head branch is not the branch it names
        paused = service.pauses.why(state.workspace, trigger, f"run:{state.id}")
        if paused:
            log.info("trigger %s/%s not started: %s", state.workspace, trigger.name, paused)
            continue
        if chain + 1 > MAX_CHAIN:
            log.warning(
                "trigger %s/%s not started: %d job triggers in a row (a loop?)",
                state.workspace,
                trigger.name,
                chain + 1,
            )
            continue
        run = _start(service, state, checkout, trigger, upstream, chain + 1)
        if run:
            started.append(run)
    return started


def _start(
    service: Service, state: RunState, checkout: Checkout, trigger: Trigger, upstream: dict[str, Any], chain: int
) -> str | None:

    event = {k: upstream[k] for k in _CARRIED if k in upstream}
    event.update(kind="job", source="job", chain=chain, origin=upstream.get("origin") or upstream.get("kind"))
    event["job"] = {
        "id": state.id,
        "task": state.task,
        "status": state.status.value,
        "output": state.output,
        "error": state.error,
    }
    job_id = uuid.uuid5(uuid.NAMESPACE_URL, f"strom-job:{state.id}:{trigger.name}").hex[:16]
    try:
        inputs = runs.trigger_inputs(trigger, event, state.git)
        return runs.start(
            service,
            state.workspace,
            checkout,
            trigger.task,
            inputs,
            source="job",
            trigger=trigger.name,
            event=event,
            allow_extra=True,
            job_id=job_id,
            trusted=state.trusted,
        ).id
    except Conflict:
        return None
    except StromError as exc:
        log.error("trigger %s/%s could not start %s: %s", state.workspace, trigger.name, trigger.task, exc)
        return None
