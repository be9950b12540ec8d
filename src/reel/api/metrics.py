"""Prometheus metrics: request counters of this process, and task/queue/worker gauges read from
the database (so every API process reports the same cluster-wide numbers)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reel.service import fleet, stats
from reel.service.clock import now
from reel.service.context import Services

log = logging.getLogger("reel.api")


#: Database-derived gauges are read again once older than this (seconds).
DATABASE_METRICS_TTL: Final = 10.0


class DatabaseCollector(Collector):
    """Task, queue and worker gauges from the database, read in the background.

    Counting the task table costs time in proportion to its size, so a scrape never waits for
    it: the first scrape reads the database; later ones answer at once with the last reading and,
    once it is older than ``ttl``, start a fresh reading on a background thread for the next
    scrape. The numbers are thus at most one scrape interval (plus one reading) old.
    """

    def __init__(self, services: Services, *, ttl: float = DATABASE_METRICS_TTL) -> None:
        self._services = services
        self._ttl = ttl
        self._lock = threading.Lock()
        self._reading: tuple[float, list[Metric]] | None = None
        self._refreshing = False

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            reading = self._reading
            stale = reading is not None and time.monotonic() - reading[0] > self._ttl
            refresh = stale and not self._refreshing
            self._refreshing = self._refreshing or refresh
        if reading is None:
            reading = self._read()
        elif refresh:
            threading.Thread(target=self._refresh, name="reel-metrics", daemon=True).start()
        yield from reading[1]

    def _refresh(self) -> None:
        try:
            self._read()
        except Exception:  # keep the last reading; the next stale scrape tries again
            log.warning("metrics: could not read the database", exc_info=True)
        finally:
            with self._lock:
                self._refreshing = False

    def _read(self) -> tuple[float, list[Metric]]:
        reading = (time.monotonic(), list(self._metrics()))
        with self._lock:
            self._reading = reading
        return reading

    def _metrics(self) -> Iterator[Metric]:
        services = self._services
        stale = fleet.stale_after(services.settings)
        t = now()
        with services.db.read() as session:
            by_status = stats.tasks_by_status(session)
            workers = fleet.workers(session, stale_after=stale, at=t)
            queues = fleet.models(session, services.catalog, workers)
            times = stats.generation_times(session)
        tasks = GaugeMetricFamily("reel_tasks", "Tasks by status.", labels=["status"])
        for status, n in by_status.items():
            tasks.add_metric([status], n)
        yield tasks
        depth = GaugeMetricFamily("reel_queue_depth", "Queued tasks by model.", labels=["model"])
        running = GaugeMetricFamily(
            "reel_tasks_running", "Running tasks by model.", labels=["model"]
        )
        oldest = GaugeMetricFamily(
            "reel_queue_oldest_wait_seconds",
            "How long the oldest queued task of each model has waited (0 when none).",
            labels=["model"],
        )
        alive = GaugeMetricFamily(
            "reel_workers_alive", "Live workers serving each model.", labels=["model"]
        )
        for q in queues:
            waited = 0.0 if q.oldest_queued_at is None else max(0.0, t - q.oldest_queued_at)
            depth.add_metric([q.name], q.queued)
            running.add_metric([q.name], q.running)
            oldest.add_metric([q.name], waited)
            alive.add_metric([q.name], q.workers)
        yield from (depth, running, oldest, alive)
        generation = HistogramMetricFamily(
            "reel_generation_seconds",
            "Engine time of completed tasks, by engine.",
            labels=["engine"],
        )
        for engine in times:
            buckets = [(_le(bound), float(n)) for bound, n in engine.buckets]
            buckets.append(("+Inf", float(engine.count)))
            generation.add_metric([engine.engine], buckets, engine.total_seconds)
        yield generation


def _le(bound: float) -> str:
    return f"{bound:g}" if bound != int(bound) else f"{int(bound)}.0"


class Metrics:
    """One registry per app (tests build many apps in one process)."""

    def __init__(self, services: Services) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "reel_http_requests",
            "HTTP requests served by this process.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "reel_http_request_duration_seconds",
            "Time to answer HTTP requests in this process.",
            ["method", "route"],
            registry=self.registry,
        )
        self.registry.register(DatabaseCollector(services))


class MetricsMiddleware:
    """Counts every HTTP request by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope.get("method", "GET")
                metrics.requests.labels(method, route, str(status)).inc()
                metrics.latency.labels(method, route).observe(time.perf_counter() - started)
