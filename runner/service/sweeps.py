"""Recovery sweeps: what a dead worker or scheduler left behind goes back where it is taken again.

Each sweep acts only once Redis has answered long enough for every live process to have beaten since
(no false losses after an outage), and a bug in one entry neither stops the sweep nor the others.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

from redis.exceptions import WatchError

from ..engine.events import StepAbandoned, StepAsked, StepFinished
from ..engine.status import StepStatus
from ..runs import messages
from ..store import keys
from ..store.connection import is_outage
from ..store.queues import describe_queue, executing, fail_abandoned, rq_queue
from .supervision import Health, WarnOnce

if TYPE_CHECKING:
    from ..runs.service import Service

__all__ = ["Sweeps"]

log = logging.getLogger("strom.scheduler")


class Sweeps:
    """The service's client decodes responses (`connect`): what Redis answers is str, as the casts below say."""

    def __init__(self, service: Service, health: Health, name: str, warn: WarnOnce):
        self.service = service
        self.config = service.config
        self.redis = service.redis
        self.health = health
        self.name = name  # the scheduler's own: its consumers are alive
        self.warn = warn

    def run(self, now: float) -> None:
        queued = cast("dict[str, str]", self.redis.hgetall(keys.QUEUED))
        for name, sweep in (
            ("lost", lambda: self.lost(now)),
            ("orphans", lambda: self.orphans(now, queued)),
            ("unmatched", lambda: self.unmatched(now, queued)),
            ("consumers", lambda: self.consumers(now)),
        ):
            self.guarded(name, sweep)

    def guarded(self, name: str, sweep: Callable[[], object]) -> None:
        """Run one sweep; a bug in it is logged, shown in the health record, and keeps no other sweep from running."""
        failure = self._contained(f"sweep {name}", sweep)
        if failure is not None:
            self.health.set(f"sweep-{name}", "failing", failure[:300])
        elif f"sweep-{name}" in self.health.loops:
            self.health.set(f"sweep-{name}", "running")

    def _steady(self, now: float) -> bool:
        """Whether Redis has answered long enough for every live worker to have beaten since (no false losses)."""
        return self.health.redis_steady_for(now) >= self.config.lost_after

    def _each(self, what: str, act: Callable[[], object]) -> None:
        """One entry of a sweep: a bug in one (its definitions are gone, say) does not stop the others."""
        self._contained(f"sweeping {what}", act)

    def _contained(self, what: str, act: Callable[[], object]) -> str | None:
        """Run `act`; a failure other than an outage is logged once and returned as text, not raised."""
        try:
            act()
        except Exception as exc:
            if is_outage(exc):
                raise
            self.warn(f"{what} failed: {type(exc).__name__}: {exc}", exc)
            return f"{type(exc).__name__}: {exc}"
        return None

    # ----------------------------------------------------------------- attempts whose worker died
    def lost(self, now: float) -> None:
        """Attempts whose worker stopped beating (their RQ job's execution expired from its started registry,
        and no live worker owes their end): their stored result is applied if they have one, else they are
        retried if they have attempts left, or failed."""
        entries = cast("dict[str, str]", self.redis.hgetall(keys.RUNNING))
        if not entries or not self._steady(now):
            return
        step_keys = list(entries)
        with self.redis.pipeline(transaction=False) as pipe:
            for step_key in step_keys:
                pipe.exists(keys.owed(*keys.parse_step_key(step_key)))
                pipe.get(keys.result(*keys.parse_step_key(step_key)))
            answers = pipe.execute()
        rq_ids = [keys.rq_job_id(*keys.parse_step_key(step_key)) for step_key in step_keys]
        running, queues = executing(self.service.rq_redis, rq_ids, now)
        lost = []
        for step_key, rq_id, (owed, result) in zip(step_keys, rq_ids, zip(answers[::2], answers[1::2])):
            info = json.loads(entries[step_key])
            if not owed and rq_id not in running and now - float(info.get("since") or 0) >= self.config.lost_after:
                lost.append((step_key, info, result, queues.get(rq_id)))
        # RQ's registries say so too: the jobs of expired executions fail there, as abandoned
        fail_abandoned(self.service.rq_redis, {queue for *_, queue in lost if queue})
        for step_key, info, result, _ in lost:
            self._each(step_key, lambda: self._lost(step_key, info, result, now))

    def _lost(self, step_key: str, info: dict, result: str | None, now: float) -> None:
        job_id, step, attempt = keys.parse_step_key(step_key)
        event = messages.decode(result).get("event") if result else None
        if not isinstance(event, (StepFinished, StepAsked)):  # no report of its end is waiting anywhere: lost
            worker = info.get("worker") or "its worker"
            event = StepAbandoned(step, attempt, f"worker lost: {worker} stopped sending heartbeats", retry=True)
        if self.service.orchestrator.try_apply(job_id, event, now) is None:
            self.redis.hdel(keys.RUNNING, step_key)

    # ----------------------------------------------------------------- attempts taken but never started
    def orphans(self, now: float, queued: dict[str, str]) -> None:
        """Queued attempts that left their queue but that no live worker holds go back to their queue.

        A worker takes an attempt's id off its queue and then claims it; one that dies in between, or
        after claiming but before its start is recorded, leaves the attempt nowhere. Handing it back
        is safe even if its taker is only slow: the claim lets one worker run an attempt."""
        infos = {key: json.loads(raw) for key, raw in queued.items()}
        stale = {key: info for key, info in infos.items() if now - float(info["since"]) >= self.config.lost_after}
        if not stale or not self._steady(now):
            return
        step_keys = list(stale)
        with self.redis.pipeline(transaction=False) as pipe:
            for step_key in step_keys:
                pipe.get(keys.claim(*keys.parse_step_key(step_key)))
            owners = pipe.execute()
            for queue in {info["queue"] for info in stale.values()}:
                pipe.lrange(rq_queue(queue, self.service.rq_redis).key, 0, -1)
            waiting = set().union(*pipe.execute())
            for owner in owners:
                pipe.exists(keys.worker_alive(owner or "-"))
            alive = pipe.execute()
        for step_key, owner, owner_alive in zip(step_keys, owners, alive):
            job_id, step, attempt = keys.parse_step_key(step_key)
            if (owner and owner_alive) or (not owner and keys.rq_job_id(job_id, step, attempt) in waiting):
                continue
            self._each(step_key, lambda: self._hand_back(job_id, step, attempt, stale[step_key]["queue"], owner, now))

    def _hand_back(self, job_id: str, step: str, attempt: int, queue: str, owner: str | None, now: float) -> None:
        """Put the attempt back on its queue, if it still waits for a worker at that attempt and its claim is
        still what the sweep saw (another scheduler may have handed it back meanwhile)."""
        claim, step_key = keys.claim(job_id, step, attempt), keys.step_key(job_id, step, attempt)
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(keys.job(job_id), claim)
                state = self.service.runs.load(job_id, client=pipe)
                run = state.steps.get(step) if state is not None else None
                if run is None or run.status is not StepStatus.QUEUED or run.attempt != attempt:
                    pipe.reset()
                    self.redis.hdel(keys.QUEUED, step_key)  # a stale entry: the attempt moved on
                    return
                if pipe.get(claim) != owner:
                    pipe.reset()
                    return
                has_job = pipe.exists(keys.rq_job(job_id, step, attempt))
                pipe.multi()
                if has_job:
                    if owner:
                        pipe.delete(claim)
                    pipe.lpush(rq_queue(queue, self.service.rq_redis).key, keys.rq_job_id(job_id, step, attempt))
                    pipe.hset(keys.QUEUED, step_key, json.dumps({"queue": queue, "since": now}))
                pipe.execute()
            except WatchError:
                return  # it changed meanwhile: the next sweep looks again
        who = f"its worker {owner} is gone" if owner else "no worker took it"
        if has_job:
            log.warning(
                "attempt %d of %s/%s left its queue but %s: handed back to %s", attempt, job_id, step, who, queue
            )
        else:  # nothing to hand back (no worker can take it either): end the attempt, for a retry
            self.service.orchestrator.try_apply(
                job_id, StepAbandoned(step, attempt, f"its queue entry was lost ({who})", retry=True), now
            )

    # ----------------------------------------------------------------- steps no worker can take
    def unmatched(self, now: float, queued: dict[str, str] | None = None) -> None:
        """Queued steps no live worker can take fail after `unmatched_timeout`, naming what is missing."""
        entries = cast("dict[str, str]", self.redis.hgetall(keys.QUEUED)) if queued is None else queued
        if not entries or not self._steady(now):  # after an outage, workers first beat again
            return
        offered = None
        for step_key, raw in entries.items():
            info = json.loads(raw)
            if now - float(info["since"]) < self.config.unmatched_timeout:
                continue
            if offered is None:
                live = self.service.workers.live()
                offered = {q for w in live for q in w.queues}
                summary = (
                    ", ".join(
                        f"{w.name} [{', '.join(w.abilities)}{'; ' + ', '.join(w.tags) if w.tags else ''}]" for w in live
                    )
                    or "none"
                )
            if info["queue"] in offered:
                continue
            job_id, step, attempt = keys.parse_step_key(step_key)
            ability = describe_queue(info["queue"])
            error = (
                f"no live worker offers {ability} (waited {int(now - float(info['since']))}s; live workers: "
                f"{summary}); start one with `strom worker --abilities ...`"
            )
            if (
                self.service.orchestrator.try_apply(job_id, StepAbandoned(step, attempt, error, retry=False), now)
                is None
            ):
                self.redis.hdel(keys.QUEUED, step_key)

    # ----------------------------------------------------------------- a dead scheduler's messages
    def consumers(self, now: float) -> None:
        """Hand back what a dead scheduler was holding (once Redis has answered long enough for it to beat)."""
        if not self._steady(now):
            return
        for owner, raw in cast("dict[str, str]", self.redis.hgetall(keys.CONSUMERS)).items():
            if owner == self.name or self.redis.exists(keys.consumer_alive(owner)):
                continue
            for queue, busy in json.loads(raw):
                while self.redis.lmove(busy, queue, "RIGHT", "LEFT") is not None:
                    pass
            self.redis.hdel(keys.CONSUMERS, owner)
