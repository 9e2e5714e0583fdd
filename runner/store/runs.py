"""Runs in Redis: one JSON document per run, plus the indexes that list and filter them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from ..engine.state import RunState, StepRun, changed_steps
from ..engine.status import RunStatus, StepStatus
from . import keys
from .documents import Documents

if TYPE_CHECKING:
    from redis import Redis
    from redis.client import Pipeline

__all__ = [
    "CLAIM_OVER",
    "CLAIM_TTL",
    "Change",
    "RunFilter",
    "RunPage",
    "RunStore",
    "branch_of",
    "branch_row",
    "pull_request_of",
    "pull_row",
    "row_of",
    "summary",
]

CLAIM_OVER = "-over-"  # an attempt's claim once the attempt has ended: no worker can claim it again
CLAIM_TTL = 86400
RQ_JOB_AFTER_END = 60  # seconds RQ's record of an attempt's job stays once Strom has ended the attempt
SCAN_BUDGET = 2000  # index entries a listing examines per page, at most
RUN_INDEXES_VERSION = "3"  # runs are in the source and branch indexes and in the latest-run hashes
CHANGES_KEPT = 1000  # run status changes the stream keeps (about: it is trimmed in whole nodes)
_FIELD = "\x1f"  # between the row and the task in a latest-run field: in neither a branch nor a task name


@dataclass(frozen=True)
class RunFilter:
    workspace: str | None = None
    task: str | None = None
    status: str | None = None
    trigger: str | None = None
    source: str | None = None
    pr: int | None = None  # runs of this pull request (needs `workspace`)
    branch: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True)
class Change:
    """A run's status changed: what the overview's live stream sends."""

    id: str  # the stream entry's id, a cursor
    run: str
    workspace: str
    task: str
    status: str


@dataclass(frozen=True)
class RunPage:
    runs: list[RunState]
    next_before: float | None  # pass as `before` for the next (older) page


def summary(state: RunState) -> dict[str, Any]:
    """The short form of a run used in listings."""
    started = state.started_at or state.created_at
    end = state.finished_at
    return {
        "id": state.id,
        "workspace": state.workspace,
        "task": state.task,
        "status": state.status.value,
        "source": state.source,
        "trigger": state.trigger,
        "created_at": state.created_at,
        "started_at": state.started_at,
        "finished_at": state.finished_at,
        "duration": (end - started) if end else None,
        "attempt": state.attempt,
        "commit": state.commit,
        "git": dict(state.git) if state.git else None,
        "parent": state.parent_job,
        "error": state.error,
    }


def _in_flight(run: StepRun) -> bool:
    return not run.is_placeholder and not run.child_job and not run.approval


_ON_A_WORKER = (StepStatus.QUEUED, StepStatus.RUNNING)


def _attempt_over(prev: StepRun, run: StepRun) -> bool:
    """Whether a worker's attempt `prev` ended with this change (finished, lost, cancelled or retried)."""
    return (
        prev.status in _ON_A_WORKER
        and _in_flight(prev)
        and (run.attempt != prev.attempt or run.status not in _ON_A_WORKER)
    )


class RunStore:
    """`redis` decodes responses (`connect`): what it answers is str, as the casts below say."""

    def __init__(self, redis: Redis):
        self.redis = redis
        self.documents = Documents()

    # ---------------------------------------------------------------- reads
    def load(self, job_id: str, client: Redis | None = None) -> RunState | None:
        raw = (client or self.redis).get(keys.job(job_id))
        return self.documents.parse(job_id, cast("str", raw)) if raw else None

    def load_many(self, job_ids: Iterable[str]) -> list[RunState]:
        ids = list(job_ids)
        if not ids:
            return []
        raws = self.redis.mget([keys.job(i) for i in ids])
        return [RunState.from_dict(json.loads(raw)) for raw in raws if raw]

    def exists(self, job_id: str) -> bool:
        return bool(self.redis.exists(keys.job(job_id)))

    def active_ids(self) -> set[str]:
        return set(cast("set[str]", self.redis.smembers(keys.ACTIVE)))

    def workspaces(self) -> list[str]:
        """Every workspace that has stored runs."""
        return sorted(cast("set[str]", self.redis.smembers(keys.RUN_WORKSPACES)))

    # ---------------------------------------------------------------- writes (inside a MULTI pipeline)
    def stage(self, pipe: Pipeline, old: RunState | None, new: RunState, now: float) -> None:
        """Write `new` and bring every index in line with the change from `old`."""
        pipe.set(keys.job(new.id), self.documents.render(new))
        if old is None:
            score = new.created_at
            pipe.zadd(keys.RUNS, {new.id: score})
            pipe.zadd(keys.runs_by("workspace", new.workspace), {new.id: score})
            pipe.sadd(keys.RUN_WORKSPACES, new.workspace)
            pipe.zadd(keys.runs_by("task", new.workspace, new.task), {new.id: score})
            if new.trigger:
                pipe.zadd(keys.runs_by("trigger", new.workspace, new.trigger), {new.id: score})
            if pull_request_of(new) is not None:
                pipe.zadd(keys.runs_by("pr", new.workspace, str(pull_request_of(new))), {new.id: score})
            _stage_filter_indexes(pipe, new)
            _stage_latest(pipe, new)
            pipe.sadd(keys.ACTIVE, new.id)
        if old is None or old.status is not new.status:
            change: dict[Any, Any] = {
                "run": new.id,
                "workspace": new.workspace,
                "task": new.task,
                "status": new.status.value,
            }
            pipe.xadd(keys.RUN_CHANGES, change, maxlen=CHANGES_KEPT, approximate=True)
            if old is not None:
                pipe.zrem(keys.runs_by("status", old.status.value), new.id)
            pipe.zadd(keys.runs_by("status", new.status.value), {new.id: new.created_at})
            if new.status.terminal:
                pipe.hincrby(keys.COUNTERS, f"runs_{new.status.value}", 1)
                pipe.zadd(keys.LOGS_TO_ARCHIVE, {new.id: now})
        if new.status.terminal:
            pipe.srem(keys.ACTIVE, new.id)
            pipe.zrem(keys.WAKE, new.id)
        self._stage_in_flight(pipe, old, new, now)

    def _stage_in_flight(self, pipe: Pipeline, old: RunState | None, new: RunState, now: float) -> None:
        for name, prev, run in changed_steps(old, new):
            if prev is not None and prev.status is StepStatus.QUEUED:
                pipe.hdel(keys.QUEUED, keys.step_key(new.id, name, prev.attempt))
            if prev is not None and _attempt_over(prev, run):
                # the claim stays, as a tombstone: a worker still holding the attempt's job must not claim it
                pipe.set(keys.claim(new.id, name, prev.attempt), CLAIM_OVER, ex=CLAIM_TTL)
                pipe.delete(keys.result(new.id, name, prev.attempt))
                # RQ's record of the job goes soon (its payload carries the step's secrets), not at once: a worker
                # may still be finishing the job in RQ's registries (a job it starts after this keeps its record)
                pipe.expire(keys.rq_job(new.id, name, prev.attempt), RQ_JOB_AFTER_END)
            if prev is not None and prev.status is StepStatus.RUNNING and _in_flight(prev):
                pipe.hdel(keys.RUNNING, keys.step_key(new.id, name, prev.attempt))
            if run.status is StepStatus.RUNNING and _in_flight(run):
                info = {"since": run.started_at or now, "worker": run.worker}
                pipe.hset(keys.RUNNING, keys.step_key(new.id, name, run.attempt), json.dumps(info))
            if run.status.terminal and run.started_at and run.finished_at and _in_flight(run):
                _observe(pipe, run.finished_at - run.started_at)

    # ---------------------------------------------------------------- listing
    def list(self, flt: RunFilter, limit: int = 50, before: float | None = None) -> RunPage:
        """Newest first. `before` is the created_at bound from the previous page (exclusive).

        The smallest index that `flt` allows is read, and at most SCAN_BUDGET of its entries per page: when
        the other filters match few of them, the page is short and `next_before` says where to go on."""
        index, exact = self._smallest(_indexes(flt))
        high: float | str
        if before is not None and (flt.until is None or before <= flt.until):
            high = f"({before}"
        else:
            high = flt.until if flt.until is not None else "+inf"
        low = flt.since if flt.since is not None else "-inf"
        found: list[RunState] = []
        cursor, examined, exhausted = high, 0, False
        batch = limit if exact else max(limit * 2, 50)  # an exact index: each entry is a run of the page
        while len(found) < limit and examined < SCAN_BUDGET and not exhausted:
            entries = cast(
                "list[tuple[str, float]]",
                self.redis.zrevrangebyscore(index, cursor, low, start=0, num=batch, withscores=True),
            )
            examined += len(entries)
            found += [state for state in self.load_many(i for i, _ in entries) if _matches(state, flt)]
            exhausted = len(entries) < batch
            if entries:
                cursor = f"({entries[-1][1]}"
        page = _newest(found, limit)
        if len(found) >= limit:
            return RunPage(page, page[-1].created_at)
        if exhausted:
            return RunPage(page, None)
        return RunPage(page, float(str(cursor)[1:]))  # the scan budget ran out: go on from where it stopped

    def _smallest(self, indexes: Sequence[tuple[str, bool]]) -> tuple[str, bool]:
        """The smallest of the (index, exact) candidates."""
        if len(indexes) == 1:
            return indexes[0]
        with self.redis.pipeline(transaction=False) as pipe:
            for index, _ in indexes:
                pipe.zcard(index)
            sizes = pipe.execute()
        return min(zip(sizes, indexes, strict=True))[1]

    # ---------------------------------------------------------------- the overview
    def latest(self, workspace: str) -> dict[tuple[str, str], RunState]:
        """(row, task) -> the task's newest top-level run on that row (`row_of`). Entries whose run is gone
        (retention) are dropped."""
        fields = cast("dict[str, str]", self.redis.hgetall(keys.latest_runs(workspace)))
        states = {state.id: state for state in self.load_many(set(fields.values()))}
        gone = [field for field, run_id in fields.items() if run_id not in states]
        if gone:
            self.redis.hdel(keys.latest_runs(workspace), *gone)
        found = {}
        for field, run_id in fields.items():
            row, _, task = field.partition(_FIELD)
            if run_id in states:
                found[(row, task)] = states[run_id]
        return found

    def forget_row(self, workspace: str, row: str) -> None:
        """Drop a row of the overview: its branch was deleted or its pull request closed."""
        fields = cast("list[str]", self.redis.hkeys(keys.latest_runs(workspace)))
        mine = [field for field in fields if field.partition(_FIELD)[0] == row]
        if mine:
            self.redis.hdel(keys.latest_runs(workspace), *mine)

    def last_change(self) -> str:
        """The id of the newest run change (a cursor for `changes`), or "0-0"."""
        newest = cast("list[tuple[str, Any]]", self.redis.xrevrange(keys.RUN_CHANGES, count=1))
        return newest[0][0] if newest else "0-0"

    def changes(self, after: str, block_ms: int, client: Redis | None = None) -> tuple[Change, ...]:
        """Run status changes after the cursor `after`, waiting up to `block_ms` for the first (on `client`, a
        connection whose read timeout outlasts the wait)."""
        result = cast(
            "list[list[Any]]",
            (client or self.redis).xread({keys.RUN_CHANGES: after}, block=block_ms, count=100),
        )
        entries = result[0][1] if result else []
        return tuple(
            Change(entry_id, f.get("run", ""), f.get("workspace", ""), f.get("task", ""), f.get("status", ""))
            for entry_id, f in entries
        )

    # ---------------------------------------------------------------- upgrades
    def index_filters(self, batch: int = 500) -> int:
        """Add runs stored before the source and branch indexes and the latest-run hashes existed to them (once;
        safe to repeat)."""
        if self.redis.get(keys.RUN_INDEXES) == RUN_INDEXES_VERSION:
            return 0
        done, start = 0, 0
        while True:
            ids = cast("Sequence[str]", self.redis.zrange(keys.RUNS, start, start + batch - 1))
            if not ids:
                break
            with self.redis.pipeline(transaction=False) as pipe:
                for state in self.load_many(ids):  # oldest first: the newest run of a row is written last
                    _stage_filter_indexes(pipe, state)
                    _stage_latest(pipe, state)
                    done += 1
                pipe.execute()
            start += batch
        self.redis.set(keys.RUN_INDEXES, RUN_INDEXES_VERSION)
        return done

    def delete(self, states: Iterable[RunState]) -> int:
        count = 0
        with self.redis.pipeline() as pipe:
            for state in states:
                pipe.delete(
                    keys.job(state.id),
                    keys.log(state.id),
                    keys.log_bytes(state.id),
                    keys.artifact_bytes(state.id),
                    keys.log_archive(state.id),
                )
                pipe.zrem(keys.LOGS_TO_ARCHIVE, state.id)
                pipe.zrem(keys.RUNS, state.id)
                pipe.zrem(keys.runs_by("workspace", state.workspace), state.id)
                pipe.zrem(keys.runs_by("task", state.workspace, state.task), state.id)
                if state.trigger:
                    pipe.zrem(keys.runs_by("trigger", state.workspace, state.trigger), state.id)
                if pull_request_of(state) is not None:
                    pipe.zrem(keys.runs_by("pr", state.workspace, str(pull_request_of(state))), state.id)
                pipe.zrem(keys.runs_by("status", state.status.value), state.id)
                for index in _filter_indexes(state):
                    pipe.zrem(index, state.id)
                pipe.srem(keys.ACTIVE, state.id)
                count += 1
            pipe.execute()
        return count

    def status_counts(self) -> dict[str, int]:
        with self.redis.pipeline() as pipe:
            for status in RunStatus:
                pipe.zcard(keys.runs_by("status", status.value))
            counts = pipe.execute()
        return {status.value: count for status, count in zip(RunStatus, counts)}


def _filter_indexes(state: RunState) -> list[str]:
    """The source and branch indexes `state` belongs in."""
    branch = branch_of(state)
    return [keys.runs_by(kind, value) for kind, value in (("source", state.source), ("branch", branch)) if value]


def _stage_filter_indexes(pipe: Pipeline, state: RunState) -> None:
    for index in _filter_indexes(state):
        pipe.zadd(index, {state.id: state.created_at})


def branch_row(branch: str) -> str:
    """The overview's row of a branch (empty name: a folder workspace's)."""
    return f"branch:{branch}"


def pull_row(number: int) -> str:
    """The overview's row of a pull request."""
    return f"pr:{number}"


def row_of(state: RunState) -> str:
    """The overview's row of a run: its pull request's, else its branch's."""
    number = pull_request_of(state)
    return pull_row(number) if number is not None else branch_row(branch_of(state))


def _stage_latest(pipe: Pipeline, state: RunState) -> None:
    if state.parent_job is None:  # a child run shows in its parent's task, not in a column of its own
        pipe.hset(keys.latest_runs(state.workspace), f"{row_of(state)}{_FIELD}{state.task}", state.id)


def _indexes(flt: RunFilter) -> list[tuple[str, bool]]:
    """Every index whose runs all pass a part of `flt` (RUNS when none does), and whether they pass all of it
    (since and until bound the scores, so they always do)."""
    given = {name for name in ("workspace", "task", "trigger", "status", "source", "branch") if getattr(flt, name)} | (
        {"pr"} if flt.pr is not None else set()
    )
    found = []

    def add(index: str, *covers: str) -> None:
        found.append((index, given <= set(covers)))

    if flt.workspace:
        add(keys.runs_by("workspace", flt.workspace), "workspace")
        if flt.task:
            add(keys.runs_by("task", flt.workspace, flt.task), "workspace", "task")
        if flt.trigger:
            add(keys.runs_by("trigger", flt.workspace, flt.trigger), "workspace", "trigger")
        if flt.pr is not None:
            add(keys.runs_by("pr", flt.workspace, str(flt.pr)), "workspace", "pr")
    if flt.status:
        add(keys.runs_by("status", flt.status), "status")
    if flt.source:
        add(keys.runs_by("source", flt.source), "source")
    if flt.branch:
        add(keys.runs_by("branch", flt.branch), "branch")
    return found or [(keys.RUNS, not given)]


def _newest(states: list[RunState], limit: int) -> list[RunState]:
    return sorted(states, key=lambda s: s.created_at, reverse=True)[:limit]


def _matches(state: RunState, flt: RunFilter) -> bool:
    return (
        (flt.workspace is None or state.workspace == flt.workspace)
        and (flt.task is None or state.task == flt.task)
        and (flt.status is None or state.status.value == flt.status)
        and (flt.trigger is None or state.trigger == flt.trigger)
        and (flt.source is None or state.source == flt.source)
        and (flt.pr is None or pull_request_of(state) == flt.pr)
        and (flt.branch is None or branch_of(state) == flt.branch)
    )


def branch_of(state: RunState) -> str:
    return (state.git or {}).get("branch") or (state.event or {}).get("branch") or ""


def pull_request_of(state: RunState) -> int | None:
    """The number of the pull request whose event started the run (or its chain), if any."""
    number = ((state.event or {}).get("pr") or {}).get("number")
    return int(number) if number is not None else None


BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)


def _observe(pipe: Pipeline, seconds: float) -> None:
    for bound in BUCKETS:
        if seconds <= bound:
            pipe.hincrby(keys.STEP_SECONDS, f"le_{bound}", 1)
            break
    else:
        pipe.hincrby(keys.STEP_SECONDS, "le_inf", 1)
    pipe.hincrbyfloat(keys.STEP_SECONDS, "sum", seconds)
    pipe.hincrby(keys.STEP_SECONDS, "count", 1)
