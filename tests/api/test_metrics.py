"""/metrics: Prometheus text with request counters and database-derived task/queue gauges."""

from __future__ import annotations

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from reel.api.app import create_app
from reel.db.models import Worker
from reel.service.clock import now
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth, with_settings
from tests.factories import make_key

T2V = {"prompt": "a fox", "mode": "textToVideo"}


def scrape(
    client: TestClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics", headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(r.text)
        for s in family.samples
    }


def test_metrics_report_requests_tasks_queues_and_generation(
    client: TestClient, services: Services
) -> None:
    key = make_key(services, credits=100).key
    for _ in range(2):
        assert client.post("/api/sora-2/generate", json=T2V, headers=auth(key)).status_code == 200
    assert run_once(Runner(services))
    with services.db.write() as session:
        session.add(
            Worker(
                id="w-1", host="gpu-1", pid=1, models=["sandbox"], started_at=now(), last_seen=now()
            )
        )
    m = scrape(client)
    assert m[("reel_tasks", (("status", "queued"),))] == 1
    assert m[("reel_tasks", (("status", "completed"),))] == 1
    assert m[("reel_queue_depth", (("model", "sandbox"),))] == 1
    assert m[("reel_queue_oldest_wait_seconds", (("model", "sandbox"),))] >= 0
    assert m[("reel_workers_alive", (("model", "sandbox"),))] == 1
    assert m[("reel_generation_seconds_count", (("engine", "sandbox"),))] == 1
    assert m[("reel_generation_seconds_bucket", (("engine", "sandbox"), ("le", "+Inf")))] == 1
    assert m[("reel_generation_seconds_sum", (("engine", "sandbox"),))] > 0
    route = (("method", "POST"), ("route", "/api/sora-2/generate"), ("status", "200"))
    assert m[("reel_http_requests_total", route)] == 2


def test_metrics_token_guards_the_endpoint(services: Services) -> None:
    guarded = with_settings(services, metrics_token="s3cret")
    with TestClient(create_app(guarded.settings, services=guarded)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=auth("wrong")).status_code == 401
        assert scrape(c, Authorization="Bearer s3cret")


def test_database_gauges_are_served_from_the_last_reading_and_refreshed_behind(
    client: TestClient, services: Services
) -> None:
    import time

    from reel.api.metrics import DatabaseCollector

    def queued(collector: DatabaseCollector) -> float:
        family = next(m for m in collector.collect() if m.name == "reel_tasks")
        return next(s.value for s in family.samples if s.labels["status"] == "queued")

    key = make_key(services, credits=100).key
    fresh, cached = DatabaseCollector(services, ttl=0.0), DatabaseCollector(services, ttl=3600)
    assert queued(fresh) == queued(cached) == 0  # the first scrape reads the database
    assert client.post("/api/sora-2/generate", json=T2V, headers=auth(key)).status_code == 200
    assert queued(cached) == 0  # within its ttl: the last reading, no database work
    assert queued(fresh) == 0  # stale: answered at once, a reading starts behind it
    deadline = time.monotonic() + 10
    while queued(fresh) != 1:
        assert time.monotonic() < deadline, "the background reading never landed"
        time.sleep(0.02)
