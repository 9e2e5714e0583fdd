"""Prometheus metrics, read from Redis at scrape time so every web process reports the same numbers."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from flask import Blueprint, Response

from runner.store import keys
from runner.store.runs import BUCKETS

from .access.tokens import requires
from .context import current_service

if TYPE_CHECKING:
    from runner.runs.service import Service

__all__ = ["bp"]

bp = Blueprint("metrics", __name__)


class _Collector:
    def __init__(self, service: Service):
        self.service = service

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        redis = self.service.redis
        runs = GaugeMetricFamily("strom_runs", "Runs stored, by status", labels=["status"])
        for status, count in self.service.runs.status_counts().items():
            runs.add_metric([status], count)
        yield runs
        finished = CounterMetricFamily("strom_runs_finished", "Runs that reached a final status", labels=["status"])
        for name, total in cast("dict[str, str]", redis.hgetall(keys.COUNTERS)).items():  # decoded (`connect`)
            if name.startswith("runs_"):
                finished.add_metric([name[5:]], float(total))
        yield finished
        tokens = CounterMetricFamily(
            "strom_agent_tokens",
            "Tokens agent steps used, by provider, model and direction",
            labels=["provider", "model", "kind"],
        )
        for name, total in sorted(cast("dict[str, str]", redis.hgetall(keys.AGENT_TOKENS)).items()):
            provider, _, rest = name.partition("\x1f")
            model, _, kind = rest.rpartition("\x1f")
            tokens.add_metric([provider, model, kind], float(total))
        yield tokens
        raw = cast("dict[str, str]", redis.hgetall(keys.STEP_SECONDS))
        cumulative, buckets = 0, []
        for bound in BUCKETS:
            cumulative += int(raw.get(f"le_{bound}", 0))
            buckets.append((str(float(bound)), cumulative))
        cumulative += int(raw.get("le_inf", 0))
        buckets.append(("+Inf", cumulative))
        yield HistogramMetricFamily(
            "strom_step_duration_seconds",
            "Time steps took on workers",
            buckets=buckets,
            sum_value=float(raw.get("sum", 0)),
        )
        depth = GaugeMetricFamily("strom_queue_depth", "Steps waiting in each queue", labels=["queue"])
        for key in sorted(cast("set[str]", redis.smembers("rq:queues"))):
            name = key.removeprefix("rq:queue:")
            depth.add_metric([name], redis.llen(key))
        yield depth
        live = self.service.workers.live()
        workers = GaugeMetricFamily("strom_workers", "Live workers, by ability", labels=["ability"])
        for ability in sorted({a for w in live for a in w.abilities}):
            workers.add_metric([ability], sum(1 for w in live if ability in w.abilities))
        yield workers
        yield GaugeMetricFamily("strom_workers_live", "Live workers", value=len(live))
        loops = GaugeMetricFamily(
            "strom_loop_up",
            "Whether a loop of a scheduler or worker process is running (1) or waiting for Redis, failing or dead (0)",
            labels=["process", "kind", "loop"],
        )
        for record in self.service.workers.processes(time.time()):
            for name, loop in record.get("loops", {}).items():
                loops.add_metric([record["name"], record["kind"], name], 1.0 if loop.get("state") == "running" else 0.0)
        yield loops
        yield GaugeMetricFamily("strom_steps_running", "Steps running on workers", value=redis.hlen(keys.RUNNING))
        yield GaugeMetricFamily("strom_steps_queued", "Steps waiting for a worker", value=redis.hlen(keys.QUEUED))
        yield GaugeMetricFamily(
            "strom_repo_events_queued", "Repository events waiting to be processed", value=redis.llen(keys.INTAKE)
        )
        yield GaugeMetricFamily(
            "strom_reports_queued", "Reports waiting to be sent to forges", value=redis.llen(keys.REPORTS)
        )
        yield CounterMetricFamily(
            "strom_reports_failed",
            "Reports to forges that failed after their retries",
            value=float(redis.hget(keys.COUNTERS, "reports_failed") or 0),
        )
        yield CounterMetricFamily(
            "strom_notifications_sent",
            "Notifications delivered (one per URL)",
            value=float(redis.hget(keys.COUNTERS, "notifications_sent") or 0),
        )
        yield CounterMetricFamily(
            "strom_notifications_failed",
            "Notifications that failed after their retries (one per URL)",
            value=float(redis.hget(keys.COUNTERS, "notifications_failed") or 0),
        )


@bp.get("/metrics")
@requires("read")
def metrics():
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
    from prometheus_client.core import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collector(current_service()))
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
