"""Prometheus metrics: what the database and Redis know, counted when scraped; how long render
and sign take, observed where they happen.

Facts that live in the database (certificates by type and state, RTS overdue, DigiLocker
deliveries) and queue depths in Redis are read at scrape time by collectors (a few GROUP BY
queries and Redis counts), so every API process gives the same numbers whichever one is
scraped, and a restart loses nothing. The latency histograms belong to the process that renders
and signs: an API process in development (jobs run inline), the RQ workers in production
(`pramaan worker --metrics-port`). Where one port stands for several processes (gunicorn's
workers, `pramaan worker --processes`), prometheus_client's multiprocess mode
(PROMETHEUS_MULTIPROC_DIR) adds them up. Labels are types, states, queue names and actions
only: nothing about a person. prometheus_client is imported lazily, after the process has
decided whether PROMETHEUS_MULTIPROC_DIR is set (the library reads it once, at its import).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from issuer.db import utcnow
from issuer.models import Certificate, Delivery

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Histogram
    from prometheus_client.metrics_core import Metric
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Render takes 0.1-0.5 s, a B-B signature ~10 ms, B-LTA with a TSA round trip a second or more.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGES = ("render", "sign")


_FIRST_USE = threading.Lock()


def stage_histograms() -> dict[str, Histogram]:
    """The process's render and sign histograms (by certificate type), registered on first use
    in prometheus_client's default registry (in multiprocess mode: in the shared directory).
    Locked: worker threads render at once, and a name registers only once."""
    with _FIRST_USE:
        return _stage_histograms()


@functools.cache
def _stage_histograms() -> dict[str, Histogram]:
    from prometheus_client import Histogram

    return {stage: Histogram(f"pramaan_{stage}_seconds",
                             f"Seconds spent in {stage} per certificate, in this process",
                             ["type"], buckets=BUCKETS)
            for stage in STAGES}


@contextmanager
def timed(stage: str, cert_type: str) -> Iterator[None]:
    """Observe how long the block takes in the `stage` histogram, when it succeeds."""
    start = time.perf_counter()
    yield
    stage_histograms()[stage].labels(type=cert_type).observe(time.perf_counter() - start)


class DatabaseCollector:
    """Certificates by type and state, issued so far by type, RTS overdue by type and DigiLocker
    deliveries by action and state: a handful of aggregate queries per scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> list[Metric]:
        return []  # no scrape at registration (the database may not be up yet)

    def collect(self) -> Iterable[Metric]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            return [*self._collect(), source_up("database", True)]
        except SQLAlchemyError as exc:  # the scrape still answers, and says the source is down
            log.warning("metrics: the database did not answer (%s)", type(exc).__name__)
            return [source_up("database", False)]

    def _collect(self) -> list[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        from issuer.rts import OPEN_STATES

        by_state = GaugeMetricFamily("pramaan_certificates", "Certificate records by type and "
                                     "state (failed: gave up, waiting for an operator)",
                                     labels=["type", "state"])
        issued = CounterMetricFamily("pramaan_certificates_issued", "Certificates ever issued "
                                     "(signed), by type, whatever they became since",
                                     labels=["type"])
        overdue = GaugeMetricFamily("pramaan_rts_overdue", "Open requests past their RTS due "
                                    "time, by type", labels=["type"])
        deliveries = GaugeMetricFamily("pramaan_digilocker_deliveries", "DigiLocker pushes by "
                                       "action (A/U/D) and outcome (pending/delivered/failed)",
                                       labels=["action", "state"])
        attempts = CounterMetricFamily("pramaan_digilocker_push_attempts", "Push attempts made, "
                                       "by action and the delivery's state",
                                       labels=["action", "state"])
        with self.sessions() as session:
            for cert_type, state, count in session.execute(
                    select(Certificate.cert_type, Certificate.state, func.count())
                    .group_by(Certificate.cert_type, Certificate.state)):
                by_state.add_metric([cert_type, state], count)
            for cert_type, count in session.execute(
                    select(Certificate.cert_type, func.count())
                    .where(Certificate.issued_at.is_not(None))
                    .group_by(Certificate.cert_type)):
                issued.add_metric([cert_type], count)
            for cert_type, count in session.execute(
                    select(Certificate.cert_type, func.count())
                    .where(Certificate.state.in_([s.value for s in OPEN_STATES]),
                           Certificate.due_at < utcnow())
                    .group_by(Certificate.cert_type)):
                overdue.add_metric([cert_type], count)
            for action, state, count, tries in session.execute(
                    select(Delivery.action, Delivery.state, func.count(),
                           func.coalesce(func.sum(Delivery.attempts), 0))
                    .group_by(Delivery.action, Delivery.state)):
                deliveries.add_metric([action, state], count)
                attempts.add_metric([action, state], int(tries))
        return [by_state, issued, overdue, deliveries, attempts]


class QueueCollector:
    """Jobs in each RQ queue and its registries (queued, started, failed, deferred,
    scheduled), read from Redis at scrape time."""

    def __init__(self, redis_url: str, queues: tuple[str, ...]) -> None:
        self.redis_url = redis_url
        self.queues = queues

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        from redis.exceptions import RedisError

        try:
            return [*self._collect(), source_up("redis", True)]
        except RedisError as exc:
            log.warning("metrics: Redis did not answer (%s)", type(exc).__name__)
            return [source_up("redis", False)]

    def _collect(self) -> list[Metric]:
        from prometheus_client.core import GaugeMetricFamily
        from redis import Redis
        from rq import Queue

        depth = GaugeMetricFamily("pramaan_queue_jobs", "RQ jobs by queue and state",
                                  labels=["queue", "state"])
        with Redis.from_url(self.redis_url) as connection:
            for name in self.queues:
                queue = Queue(name, connection=connection)
                counts = {"queued": queue.count,
                          "started": queue.started_job_registry.count,
                          "failed": queue.failed_job_registry.count,
                          "deferred": queue.deferred_job_registry.count,
                          "scheduled": queue.scheduled_job_registry.count}
                for state, count in counts.items():
                    depth.add_metric([name, state], count)
        return [depth]


def source_up(source: str, up: bool) -> Metric:
    from prometheus_client.core import GaugeMetricFamily

    return GaugeMetricFamily(f"pramaan_{source}_up", f"1 if the {source} answered this "
                             "scrape, else 0", value=1 if up else 0)


class ProcessCollector:
    """This process's own metrics (the histograms, prometheus_client's process and GC
    metrics), or, in multiprocess mode, every process's, added up."""

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        directory = os.environ.get(MULTIPROC_ENV)
        if directory:
            from prometheus_client import CollectorRegistry
            from prometheus_client.multiprocess import MultiProcessCollector

            registry = CollectorRegistry()
            collector = MultiProcessCollector(  # type: ignore[no-untyped-call]
                registry, path=directory)
            metrics: Iterable[Metric] = collector.collect()  # type: ignore[no-untyped-call]
            return metrics
        from prometheus_client import REGISTRY

        stage_histograms()  # present (at zero) before the first certificate
        return list(REGISTRY.collect())


def scrape_registry(sessions: sessionmaker[Session] | None, redis_url: str | None,
                    queues: tuple[str, ...]) -> CollectorRegistry:
    """A registry for one scrape: the process metrics, and the database's and the queues'
    facts where given."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessCollector())
    if sessions is not None:
        registry.register(DatabaseCollector(sessions))
    if redis_url:
        registry.register(QueueCollector(redis_url, queues))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    from prometheus_client import generate_latest

    return generate_latest(registry)


def serve_process_metrics(host: str, port: int) -> Any:
    """Serve this process's metrics (or, in multiprocess mode, its siblings') on host:port in
    a daemon thread: `pramaan worker --metrics-port`. The server object (shutdown() stops it)."""
    from prometheus_client import start_http_server

    server, _thread = start_http_server(port, addr=host,
                                        registry=scrape_registry(None, None, ()))
    return server
