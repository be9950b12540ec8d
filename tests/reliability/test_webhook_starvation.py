"""Webhook deliveries cannot be starved for free: a key that floods a destination which never
answers (create, cancel, repeat) holds at most its share of the senders, that destination backs
off as a whole, and another key's event still arrives at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import select

from reel.db.models import WebhookDelivery, WebhookDestination
from reel.service import keys, tasks, webhooks
from reel.service.context import Services
from reel.types import Aspect, Mode, Tier
from reel.worker import delivery
from tests.conftest import BACKENDS, backend_param, with_settings
from tests.factories import make_key
from tests.webhookreceiver import webhook_receiver

backend = pytest.fixture(params=BACKENDS)(backend_param)

FLOOD = 20
TIMEOUT = 2.0


@contextmanager
def black_hole() -> Iterator[tuple[str, list[socket.socket]]]:
    """A loopback port that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook", held
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def canceled_task(services: Services, key_id: str, url: str) -> str:
    """Create-then-cancel: costs nothing, still records a ``video.canceled`` event."""
    with services.db.read() as session:
        key = keys.get(session, key_id)
    cmd = tasks.NewTask(
        "flood", Mode.TEXT_TO_VIDEO, Tier.SORA2, Aspect.PORTRAIT, 10, extra={"callBackUrl": url}
    )
    task = tasks.create(services, key, cmd)
    tasks.cancel(services, key, task.id)
    return task.id


def test_a_black_hole_destination_never_delays_another_keys_event(services: Services) -> None:
    svc = with_settings(
        services,
        webhook_allow_hosts=("127.0.0.1",),
        webhook_timeout=TIMEOUT,
        webhook_concurrency=4,
        webhook_poll_seconds=0.05,
        webhook_backoff_base=30.0,
    )
    attacker = make_key(svc, credits=1000).id
    victim = make_key(svc, credits=100).id
    with black_hole() as (hole, held), webhook_receiver() as receiver:
        for _ in range(FLOOD):
            canceled_task(svc, attacker, hole)
        time.sleep(0.01)  # the victim's event is the newest of all
        canceled_task(svc, victim, receiver.url + "/victim")
        loop = delivery.DeliveryLoop(svc, base_url="http://reel.test")
        started = time.monotonic()
        loop.start()
        try:
            receiver.wait_for(1, timeout=TIMEOUT * 0.6)
            took = time.monotonic() - started
            # the flood's first attempts time out; then the destination rests as a whole
            time.sleep(TIMEOUT + 1.0)
        finally:
            loop.stop()
        assert took < TIMEOUT / 2, took
        assert len(held) <= svc.settings.webhook_destination_concurrency, len(held)
    with svc.db.read() as session:
        tried = session.scalars(
            select(WebhookDelivery.attempts).where(WebhookDelivery.key_id == attacker)
        ).all()
        rest = session.get(WebhookDestination, webhooks.destination_of(hole))
    assert sum(tried) <= svc.settings.webhook_destination_concurrency, tried
    assert rest is not None and rest.failures == 1 and rest.backoff_until > time.time() + 20


def test_an_event_of_a_task_canceled_while_queued_gets_a_few_attempts(
    services: Services,
) -> None:
    svc = with_settings(services, webhook_allow_hosts=("127.0.0.1",), webhook_backoff_base=0.01)
    key = make_key(svc, credits=100).id
    with webhook_receiver(fail_first=1000) as receiver:
        canceled_task(svc, key, receiver.url)
        loop = delivery.DeliveryLoop(svc, base_url="http://reel.test")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            loop.run_once()
            with svc.db.read() as session:
                row = session.scalars(select(WebhookDelivery)).one()
            if row.status == "failed":
                break
            time.sleep(0.02)
    assert row.status == "failed"
    assert (
        row.attempts == delivery.CANCELED_WHILE_QUEUED_ATTEMPTS < svc.settings.webhook_max_attempts
    )
    # a receiver that answers (even with 500) is not a destination to back off from
    with svc.db.read() as session:
        assert session.scalars(select(WebhookDestination)).all() == []
