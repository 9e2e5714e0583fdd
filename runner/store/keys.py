"""Every Redis key Strom uses, in one place."""

from __future__ import annotations

import hashlib

__all__ = [
    "ACTIVE",
    "AGENT_TOKENS",
    "CANCEL_CHANNEL",
    "CONSUMERS",
    "COUNTERS",
    "CRON_CHECKED",
    "CRON_LEASE",
    "DELAYED",
    "EVENTS",
    "EVENT_LOG",
    "EVENT_SOURCES",
    "EVENT_WORKSPACES",
    "INSTALLATION",
    "INTAKE",
    "LOGS_TO_ARCHIVE",
    "LOST_WORKERS",
    "PREFIX",
    "PROCESSES",
    "QUEUED",
    "RATE_LIMITS",
    "REPORTS",
    "RUNNING",
    "RUNS",
    "RUN_CHANGES",
    "RUN_INDEXES",
    "RUN_WORKSPACES",
    "STATE_DOOMED",
    "STEP_SECONDS",
    "WAKE",
    "WORKERS",
    "access",
    "agent_conversation",
    "artifact_bytes",
    "cancel_flag",
    "claim",
    "consumer_alive",
    "cron_last",
    "definitions",
    "delivery",
    "event_source",
    "event_source_runs",
    "event_starts",
    "events_busy",
    "group_lock",
    "heads",
    "intake_busy",
    "job",
    "latest_runs",
    "log",
    "log_archive",
    "log_bytes",
    "open_pulls",
    "owed",
    "parse_step_key",
    "paused",
    "pull_request",
    "pushes",
    "repo_event",
    "repo_event_payload",
    "repo_events_of",
    "reports_busy",
    "result",
    "rq_job",
    "rq_job_id",
    "runs_by",
    "skip_seen",
    "skipped",
    "step_key",
    "task_state",
    "trust",
    "worker_alive",
]

PREFIX = "strom"

RUNS = f"{PREFIX}:runs"  # zset id -> created_at
RUN_INDEXES = f"{PREFIX}:run-indexes"  # the version of the run indexes every stored run is in
ACTIVE = f"{PREFIX}:runs:active"  # set of unfinished run ids
RUN_WORKSPACES = f"{PREFIX}:runs:workspaces"  # set of workspaces with stored runs
RUN_CHANGES = f"{PREFIX}:runs:changes"  # stream of run status changes, capped (the overview follows it)
EVENTS = f"{PREFIX}:events"  # list of queued events (JSON)
DELAYED = f"{PREFIX}:delayed"  # zset of delayed actions (JSON) -> due time
WAKE = f"{PREFIX}:wake"  # zset run id -> when it wants a Tick
QUEUED = f"{PREFIX}:inflight:queued"  # hash "job|attempt|step" -> {queue, since}
RUNNING = f"{PREFIX}:inflight:running"  # hash "job|attempt|step" -> {since, worker}
WORKERS = f"{PREFIX}:workers"  # hash name -> worker info JSON
LOST_WORKERS = f"{PREFIX}:workers:lost"  # zset worker info JSON -> when it was found gone without leaving
INSTALLATION = f"{PREFIX}:installation"  # this installation's id, made once: marks what it owns outside Redis
PROCESSES = f"{PREFIX}:processes"  # hash name -> health of a scheduler or worker process (JSON)
CONSUMERS = f"{PREFIX}:consumers"  # hash scheduler name -> its [queue, busy list] pairs (JSON)
CANCEL_CHANNEL = f"{PREFIX}:cancel"
CRON_LEASE = f"{PREFIX}:lease:cron"
RATE_LIMITS = f"{PREFIX}:rate"  # prefix of the rate limiter's moving windows (the `limits` library's keys)
CRON_CHECKED = f"{PREFIX}:cron:checked"  # when the lease holder last looked for due ticks
STEP_SECONDS = f"{PREFIX}:metrics:step_seconds"  # hash bucket -> count, plus sum/count
COUNTERS = f"{PREFIX}:metrics:counters"  # hash name -> count
AGENT_TOKENS = f"{PREFIX}:metrics:agent-tokens"  # hash "provider\x1fmodel\x1finput|output" -> tokens


def job(job_id: str) -> str:
    return f"{PREFIX}:job:{job_id}"


def latest_runs(workspace: str) -> str:
    """hash "<row>\x1f<task>" -> the id of the task's newest top-level run on that row (a branch or a PR)"""
    return f"{PREFIX}:runs:latest:{workspace}"


def runs_by(kind: str, *parts: str) -> str:
    return f"{PREFIX}:runs:{kind}:" + ":".join(parts)


def definitions(digest: str) -> str:
    return f"{PREFIX}:defs:{digest}"


def log(job_id: str) -> str:
    return f"{PREFIX}:log:{job_id}"


def step_key(job_id: str, step: str, attempt: int) -> str:
    return f"{job_id}|{attempt}|{step}"


def parse_step_key(value: str) -> tuple[str, str, int]:
    job_id, attempt, step = value.split("|", 2)
    return job_id, step, int(attempt)


def cancel_flag(job_id: str, step: str, attempt: int) -> str:
    return f"{PREFIX}:cancel:{step_key(job_id, step, attempt)}"


def owed(job_id: str, step: str, attempt: int) -> str:
    """Set, with a short TTL, by the live worker that still owes Redis the end of this attempt (its RQ job is
    over, its report is on the way): the attempt is not lost."""
    return f"{PREFIX}:hb:{step_key(job_id, step, attempt)}"


def claim(job_id: str, step: str, attempt: int) -> str:
    """Which worker took this attempt off its queue (SET NX: one worker per attempt)."""
    return f"{PREFIX}:claim:{step_key(job_id, step, attempt)}"


def agent_conversation(job_id: str, step: str) -> str:
    """An interactive agent step's conversation, while its question waits for the answer."""
    return f"{PREFIX}:agent-conversation:{job_id}:{step}"


def result(job_id: str, step: str, attempt: int) -> str:
    """An attempt's final report, kept until the run records it (the attempt is not lost meanwhile)."""
    return f"{PREFIX}:result:{step_key(job_id, step, attempt)}"


def log_bytes(job_id: str) -> str:
    return f"{PREFIX}:logbytes:{job_id}"  # bytes of step log stored for a run


def log_archive(job_id: str) -> str:
    return f"{PREFIX}:logarchive:{job_id}"  # the object a finished run's log was moved to (runner/store/log_archive.py)


def artifact_bytes(job_id: str) -> str:
    return f"{PREFIX}:artifactbytes:{job_id}"  # bytes of artifacts stored for a run


def rq_job_id(job_id: str, step: str, attempt: int) -> str:
    return f"s-{job_id}-{attempt}-{hashlib.sha1(step.encode()).hexdigest()[:12]}"


def rq_job(job_id: str, step: str, attempt: int) -> str:
    """The RQ job hash of an attempt (RQ's own key format)."""
    return f"rq:job:{rq_job_id(job_id, step, attempt)}"


def worker_alive(name: str) -> str:
    return f"{PREFIX}:worker:{name}"


def events_busy(consumer: str) -> str:
    return f"{EVENTS}:busy:{consumer}"


def cron_last(workspace: str, trigger: str) -> str:
    return f"{PREFIX}:cron:last:{workspace}:{trigger}"


def consumer_alive(name: str) -> str:
    return f"{PREFIX}:consumer:{name}"


# repository events (webhooks, pushes, polls)
INTAKE = f"{PREFIX}:intake"  # list of event ids waiting to be processed
EVENT_LOG = f"{PREFIX}:repo-events"  # zset event id -> received_at
EVENT_WORKSPACES = f"{PREFIX}:repo-events:workspaces"  # set of workspaces with stored events
REPORTS = f"{PREFIX}:reports"  # list of report requests for forges (JSON)
RUN_TOKEN_KEY = f"{PREFIX}:run-token-key"  # the key that signs the API tokens of runs (runner/store/run_tokens.py)


def repo_event(event_id: str) -> str:
    return f"{PREFIX}:repo-event:{event_id}"


def event_starts(event_id: str) -> str:
    return f"{PREFIX}:event-starts:{event_id}"  # processing began this often without ending (crashes)


def repo_event_payload(event_id: str) -> str:
    return f"{PREFIX}:repo-event-payload:{event_id}"  # the whole event and its extras, written once


def repo_events_of(workspace: str) -> str:
    return f"{PREFIX}:repo-events:ws:{workspace}"


def delivery(source: str, workspace: str, delivery_id: str) -> str:
    return f"{PREFIX}:delivery:{source}:{workspace}:{delivery_id}"


def intake_busy(consumer: str) -> str:
    return f"{INTAKE}:busy:{consumer}"


def reports_busy(consumer: str) -> str:
    return f"{REPORTS}:busy:{consumer}"


def heads(workspace: str) -> str:
    return f"{PREFIX}:heads:{workspace}"  # hash branch -> sha last seen


def pushes(workspace: str) -> str:
    return f"{PREFIX}:pushes:{workspace}"  # zset: pushes to a hosted workspace in flight, scored by when to give up


def pull_request(workspace: str, number: int) -> str:
    return f"{PREFIX}:pr:{workspace}:{number}"  # hash: latest PR facts, trust, summary comment id, runs


def open_pulls(workspace: str) -> str:
    return f"{PREFIX}:pulls:open:{workspace}"  # zset number -> when its last event came (closed ones leave)


EVENT_SOURCES = f"{PREFIX}:event-sources"  # set "<workspace>\x1f<trigger>" of the event sources being tended


LOGS_TO_ARCHIVE = f"{PREFIX}:logs:to-archive"  # zset run id -> when it finished (runner/store/log_archive.py)
STATE_DOOMED = f"{PREFIX}:state:doomed"  # list of objects of task state snapshots retention dropped, to delete


def task_state(workspace: str, task: str) -> str:
    """list of a task's state snapshots (JSON), newest first (runner/store/task_states.py)"""
    return f"{PREFIX}:state:{workspace}:{task}"


def event_source(workspace: str, trigger: str) -> str:
    """hash: generation, run (the consumer), cursor (its log's last line read), delivered, refused, last_error,
    stopped, recycle (runner/service/event_sources.py)"""
    return f"{PREFIX}:event-source:{workspace}:{trigger}"


def event_source_runs(workspace: str, trigger: str) -> str:
    return f"{PREFIX}:event-source-runs:{workspace}:{trigger}"  # set of its target runs not seen finished yet


def group_lock(workspace: str, group: str) -> str:
    return f"{PREFIX}:lock:group:{workspace}:{group}"


def trust(workspace: str, number: int, sha: str) -> str:
    return f"{PREFIX}:trust:{workspace}:{number}:{sha}"


def access(workspace: str, question: str) -> str:
    return f"{PREFIX}:access:{workspace}:{question}"  # a forge's recent answer about someone's access


def paused(workspace: str) -> str:
    """hash "task:<name>" | "trigger:<name>" -> who paused it, when, why (JSON)"""
    return f"{PREFIX}:paused:{workspace}"


def skipped(workspace: str) -> str:
    """hash of the same fields -> firings skipped since the pause"""
    return f"{PREFIX}:skipped:{workspace}"


def skip_seen(workspace: str, occasion: str, trigger: str) -> str:
    """set while a paused trigger's skip on one occasion (an event, a tick, a run) is counted"""
    return f"{PREFIX}:skip-seen:{workspace}:{trigger}:{occasion}"
