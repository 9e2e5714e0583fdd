"""The JSON shapes of runs, steps, tasks and triggers (secret values masked)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from runner.engine.context import run_masker
from runner.engine.state import RunState, StepRun
from runner.masking import MASK, Masker, Withheld
from runner.outputs import artifact_path
from runner.spec.cron import next_fire_time
from runner.spec.model import ABSENT, InputField, Task, Trigger, TriggerType
from runner.spec.schedules import describe
from runner.store.event_sources import source_states
from runner.store.runs import summary

if TYPE_CHECKING:
    from runner.runs.service import Service

__all__ = [
    "artifacts_json",
    "input_json",
    "masker_for",
    "run_artifacts_json",
    "run_json",
    "run_summary_json",
    "task_json",
    "trigger_json",
    "workspace_triggers_json",
]


def masker_for(service: Service, state: RunState) -> Masker:
    """The run's masker; when its definitions (and so its secrets) cannot be known, one that withholds every
    value: failing closed, never showing what might be a secret."""
    try:
        return run_masker(state, service.contexts.for_state(state))
    except Exception as exc:  # noqa: BLE001 - definitions gone (retention), or a secret's source unreadable
        return Withheld(f"{type(exc).__name__}: {exc}")


def run_artifacts_json(state: RunState) -> list[dict[str, Any]]:
    """Every artifact a run's steps kept, step by step."""
    return [a for run in state.steps.values() for a in artifacts_json(state.id, run.name, run.artifacts)]


def artifacts_json(run_id: str, step: str, artifacts: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    return [
        {
            "name": a.get("name"),
            "step": step,
            "size": a.get("size"),
            "content_type": a.get("content_type"),
            "url": artifact_path(run_id, step, str(a.get("name"))),
        }
        for a in artifacts or ()
    ]


def _step(run_id: str, run: StepRun, masker: Masker) -> dict[str, Any]:
    duration = (run.finished_at - run.started_at) if run.started_at and run.finished_at else None
    return {
        "name": run.name,
        "step": run.step,
        "index": run.index,
        "item": masker.mask_value(run.item),
        "status": run.status.value,
        "attempt": run.attempt,
        "handed_back": run.handed_back,
        "queued_at": run.queued_at,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "duration": duration,
        "output": masker.mask_value(run.output),
        "error": masker.mask(run.error) if run.error else None,
        "skip_reason": run.skip_reason,
        "exit_code": run.exit_code,
        "worker": run.worker,
        "child_run": run.child_job,
        "retry_at": run.retry_at,
        "approval": masker.mask_value(dict(run.approval)) if run.approval else None,
        "answers": masker.mask_value(list(run.answers)) if run.answers else None,
        "summary": masker.mask(run.summary) if run.summary else None,
        "artifacts": artifacts_json(run_id, run.name, run.artifacts),
    }


def run_summary_json(service: Service, state: RunState) -> dict[str, Any]:
    data = summary(state)
    data["url"] = service.config.run_url(state.id)
    return data


def run_json(service: Service, state: RunState) -> dict[str, Any]:
    masker = masker_for(service, state)
    data = run_summary_json(service, state)
    secret_inputs = set(state.inputs) if isinstance(masker, Withheld) else set()
    try:
        task = service.contexts.for_state(state).task
        secret_inputs = {name for name, f in task.input.items() if f.secret}
    except Exception:  # noqa: BLE001 - which inputs are secret is unknown: masker withholds them all
        pass
    data.update(
        inputs={k: (MASK if k in secret_inputs else masker.mask_value(v)) for k, v in state.inputs.items()},
        output=masker.mask_value(state.output),
        error=masker.mask(state.error) if state.error else None,
        event=state.event,
        depth=state.depth,
        parent_step=state.parent_step,
        retry_of=state.retry_of,
        cancel_requested=state.cancel_requested,
        steps=[_step(state.id, run, masker) for run in state.steps.values()],
    )
    return data


def input_json(field: InputField) -> dict[str, Any]:
    data = {
        "type": field.type,
        "required": field.required,
        "multiple": field.multiple,
        "allow_custom": field.allow_custom,
        "secret": field.secret,
    }
    for key in ("label", "description", "order"):
        value = getattr(field, key)
        if value is not None:
            data[key] = value
    if field.options is not None:
        data["options"] = list(field.options)
    if field.default is not ABSENT and not field.secret:
        data["default"] = field.default
    return data


def trigger_json(
    trigger: Trigger,
    now: float | None = None,
    paused: Mapping[str, Any] | None = None,
    sources: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`paused`: what `Pauses.of` says of the trigger's workspace; `sources`: the state of its event sources."""
    data: dict[str, Any] = {
        "name": trigger.name,
        "type": trigger.type.value,
        "task": trigger.task,
        "enabled": trigger.enabled,
        "description": trigger.description,
        "paused": (paused or {}).get(f"trigger:{trigger.name}"),
    }
    if trigger.type is TriggerType.SCHEDULER:
        data.update(
            cron=trigger.cron,
            schedule=describe(trigger.cron) if trigger.cron else None,
            written=trigger.schedule,
            timezone=trigger.timezone,
            concurrency=trigger.concurrency,
            next_fire=next_fire_time(trigger.cron, trigger.timezone, now or time.time())
            if trigger.enabled and trigger.cron is not None
            else None,
        )  # the loader requires `cron`
    elif trigger.type is TriggerType.WEBHOOK:
        data.update(path=f"/hooks/{trigger.hook_name}", mode=trigger.mode)
    elif trigger.type is TriggerType.ALERT:
        data.update(path=f"/hooks/alertmanager/{trigger.name}", labels=dict(trigger.labels), statuses=trigger.statuses)
    elif trigger.type is TriggerType.EVENT_SOURCE:
        data.update(
            target_task=trigger.target_task,
            restart_policy=trigger.restart_policy,
            backoff_secs=trigger.backoff_secs,
            max_in_flight=trigger.max_in_flight,
            event_source=(sources or {}).get(trigger.name),
        )
    else:
        for key in ("branches", "tags", "paths", "actions", "after", "statuses"):
            value = getattr(trigger, key)
            if value:
                data[key] = list(value)
        if trigger.command:
            data["command"] = trigger.command
    return data


def workspace_triggers_json(service: Service, workspace: str, triggers: Iterable[Trigger]) -> list[dict[str, Any]]:
    """Every trigger of a workspace with what is paused and the state of its event sources (the triggers listing
    of the API and the UI's Tasks page)."""
    triggers = list(triggers)
    paused = service.pauses.of(workspace)
    sources = source_states(service, workspace, triggers)
    now = time.time()
    return [trigger_json(t, now, paused, sources) for t in triggers]


def task_json(
    workspace: str, task: Task, triggers: list[Trigger], paused: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "workspace": workspace,
        "name": task.name,
        "paused": (paused or {}).get(f"task:{task.name}"),
        "label": task.label,
        "description": task.description,
        "folder": task.folder,
        "timeout": task.timeout,
        "input": {name: input_json(f) for name, f in task.input.items()},
        "stages": list(task.stages),
        "steps": [
            {
                "name": s.name,
                "stage": s.stage,
                "depends_on": list(s.depends_on),
                "type": s.action.type.value,
                "action": s.action_ref,
                "label": s.label,
                "for_each": s.for_each is not None,
            }
            for s in (task.flow[n] for n in task.order)
        ],
        "triggers": [trigger_json(t, paused=paused) for t in triggers if t.task == task.name],
    }
