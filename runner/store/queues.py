"""Which RQ queue a step goes to, and which queues a worker listens on.

A step with ability A and tags T goes to queue `strom-A` (no tags) or `strom-A+t1+t2` (tags sorted).
A worker with abilities and tags W takes steps whose tags are a subset of W: it listens on the
queue of every subset of W, most specific first. `exclusive` workers take only steps that carry
all of their tags.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations
from typing import TYPE_CHECKING

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.utils import parse_composite_key

from .keys import rq_job_id

if TYPE_CHECKING:
    from redis import Redis

__all__ = [
    "BLOCK_SECONDS",
    "SERVER_ABILITY",
    "STEP_FUNCTION",
    "dequeue",
    "describe_queue",
    "executing",
    "fail_abandoned",
    "queue_name",
    "rq_job_id",
    "rq_queue",
    "worker_queues",
]

SERVER_ABILITY = "server"
STEP_FUNCTION = "runner.service.stepjob.run_step"
MAX_TAGS = 6
# How long one blocking pop of a queue waits: what a stopping process waits for its takers to notice (an idle
# taker costs Redis four pops a second)
BLOCK_SECONDS = 0.25


def queue_name(ability: str | None, tags: Iterable[str] = ()) -> str:
    ability = ability or SERVER_ABILITY
    clean = sorted(set(tags))
    return "strom-" + ability + ("+" + "+".join(clean) if clean else "")


def describe_queue(name: str) -> str:
    """'strom-docker+gpu' -> "ability 'docker' with tags [gpu]"."""
    ability, _, tags = name.removeprefix("strom-").partition("+")
    return f"ability {ability!r}" + (f" with tags [{', '.join(tags.split('+'))}]" if tags else "")


def worker_queues(abilities: Iterable[str], tags: Iterable[str] = (), exclusive: bool = False) -> list[str]:
    tags = sorted(set(tags))
    if len(tags) > MAX_TAGS:
        raise ValueError(f"a worker may have at most {MAX_TAGS} tags")
    subsets = [c for size in range(len(tags), -1, -1) for c in combinations(tags, size)]
    if exclusive and tags:
        subsets = [tuple(tags)]
    return [queue_name(ability, subset) for ability in abilities for subset in subsets]


def rq_queue(name: str, connection: Redis) -> Queue:
    return Queue(name, connection=connection, serializer=JSONSerializer, default_timeout=-1)


def dequeue(queues: Sequence[Queue], connection: Redis, timeout: float = BLOCK_SECONDS) -> tuple[Job, Queue] | None:
    """(job, queue) for the next job on any of `queues` (most specific first), or None after `timeout`.

    The job's id leaves its queue here (BLPOP, as RQ's own dequeue does for several queues). For a step,
    the taker then claims the attempt (see Worker.claim); a sweep hands back a step whose id left its
    queue but was never claimed."""
    by_key = {q.key: q for q in queues}
    popped = connection.blpop(list(by_key), timeout)
    if popped is None:
        return None
    key, job_id = (_text(v) for v in popped)
    try:
        job = Job.fetch(job_id, connection=connection, serializer=JSONSerializer)
    except NoSuchJobError:  # its attempt ended while it waited (cancelled): nothing to run
        return None
    return job, by_key[key]


def executing(connection: Redis, job_ids: Sequence[str], now: float) -> tuple[set[str], dict[str, str]]:
    """Which of `job_ids` an RQ worker is executing: those with an execution in their queue's started
    registry that has not expired (a worker keeps its executions alive while it lives); and the queue of
    each job that RQ still knows."""
    if not job_ids:
        return set(), {}
    with connection.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hget(Job.key_for(job_id), "origin")
        queues = {job_id: _text(origin) for job_id, origin in zip(job_ids, pipe.execute()) if origin}
        names = sorted(set(queues.values()))
        for name in names:
            pipe.zrangebyscore(StartedJobRegistry(name, connection=connection).key, now, "+inf")
        entries = [_text(entry) for found in pipe.execute() for entry in found]
    live = {job_id for job_id, _ in (parse_composite_key(entry) for entry in entries) if job_id in queues}
    return live, queues


def fail_abandoned(connection: Redis, queue_names: Iterable[str]) -> None:
    """Let RQ fail the jobs of these queues whose execution expired (their worker died), as its own cleanup
    does: they show in its failed registry as abandoned."""
    for name in sorted(set(queue_names)):
        StartedJobRegistry(name, connection=connection, serializer=JSONSerializer).cleanup()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
