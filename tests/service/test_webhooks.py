"""Signatures, the outbox and the delivery loop, in process with a loopback receiver."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from standardwebhooks import Webhook

from reel.db.models import Task, WebhookDelivery
from reel.service import keys, pricing, tasks, webhooks
from reel.service.context import Services
from reel.service.errors import InvalidParameter
from reel.types import Aspect, Mode, TaskStatus, Tier
from reel.worker import delivery
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import with_settings
from tests.factories import make_key
from tests.webhookreceiver import webhook_receiver

T2V = tasks.NewTask("A fox", Mode.TEXT_TO_VIDEO, Tier.SORA2, Aspect.PORTRAIT, 10)


def test_signature_is_standard_webhooks() -> None:
    secret = keys.new_webhook_secret()
    body = b'{"type":"video.completed"}'
    headers = webhooks.signed_headers(secret, "msg_1", 1_700_000_000, body)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == "1700000000"
    when = datetime.fromtimestamp(1_700_000_000, UTC)
    assert Webhook(secret).sign("msg_1", when, body.decode()) == headers["webhook-signature"]


def test_backoff_doubles_up_to_the_cap() -> None:
    delays = [delivery.backoff(n, base=5, cap=3600, jitter=0) for n in range(1, 14)]
    assert delays[:4] == [5, 10, 20, 40]
    assert max(delays) == 3600 and delays == sorted(delays)
    spread = {round(delivery.backoff(3, base=5, cap=3600), 3) for _ in range(50)}
    assert len(spread) > 1 and all(18 <= d <= 22 for d in spread)


def test_openai_prices_follow_the_rule() -> None:
    for (tier, seconds), credits in pricing.OPENAI_CREDITS.items():
        per_step = -(-pricing.price(tier, 10) * 4 // 10)  # ceil(10 s price × 4/10)
        assert credits == per_step * seconds // 4


def test_no_target_no_event_and_events_are_recorded_once(services: Services) -> None:
    issued = make_key(services, credits=100)
    with services.db.read() as session:
        key = keys.get(session, issued.id)
    quiet = tasks.create(services, key, T2V)
    run_once(Runner(services))
    with webhooks_url(services, issued.id, "http://127.0.0.1:9/hook"):
        loud = tasks.create(services, key, T2V)
        run_once(Runner(services))
    with services.db.write() as session:
        assert webhooks.record_event(session, loud.id, TaskStatus.COMPLETED) is None  # again
        rows = list(session.scalars(select(WebhookDelivery)))
    assert [(r.task_id, r.event) for r in rows] == [(loud.id, "video.completed")]
    assert quiet.id != loud.id
    event = json.loads(rows[0].payload)
    assert event["id"] == rows[0].id and event["data"]["taskId"] == loud.id


class webhooks_url:
    def __init__(self, services: Services, key_id: str, url: str | None) -> None:
        self.services, self.key_id, self.url = services, key_id, url

    def __enter__(self) -> None:
        with self.services.db.write() as session:
            webhooks.set_url(session, self.key_id, self.url)

    def __exit__(self, *exc: object) -> None:
        with self.services.db.write() as session:
            webhooks.set_url(session, self.key_id, None)


def test_delivery_loop_retries_then_succeeds(services: Services) -> None:
    svc = with_settings(services, webhook_allow_hosts=("127.0.0.1",), webhook_backoff_base=0.01)
    issued = make_key(svc, credits=100)
    with svc.db.read() as session:
        key = keys.get(session, issued.id)
    with webhook_receiver(fail_first=2) as receiver:
        cmd = tasks.NewTask(
            "A fox",
            Mode.TEXT_TO_VIDEO,
            Tier.SORA2,
            Aspect.PORTRAIT,
            10,
            extra={"callBackUrl": receiver.url},
        )
        task = tasks.create(svc, key, cmd)
        run_once(Runner(svc))
        loop = delivery.DeliveryLoop(svc, base_url="http://reel.test")
        for _ in range(200):
            loop.run_once()
            if len(receiver.received) == 3:
                break
            time.sleep(0.01)
    assert [r.status for r in receiver.received] == [500, 500, 200]
    event = Webhook(issued.webhook_secret).verify(
        receiver.received[-1].body, receiver.received[-1].headers
    )
    with svc.db.read() as session:
        video_key = session.get(Task, task.id).video_key  # type: ignore[union-attr]
    expected = svc.storage.url(video_key or "", base_url="http://reel.test", expires_in=60)
    # the same stored object, through this deployment's kind of link (signed route or S3)
    assert event["data"]["videoUrl"].split("?")[0] == expected.split("?")[0]
    assert task.id in event["data"]["videoUrl"]
    [row] = webhooks.list_deliveries(svc)
    assert row.status == "succeeded" and row.attempts == 3 and row.last_response == '{"ok": true}'


def test_delivery_time_refusal_uses_the_resolver(services: Services) -> None:
    """A name that now resolves to a private address is refused before connecting."""
    svc = with_settings(services, webhook_max_attempts=5)
    issued = make_key(svc, credits=100)
    with svc.db.write() as session:
        webhooks.set_url(session, issued.id, "https://hooks.example.com/reel")
        key = keys.get(session, issued.id)
    tasks.create(svc, key, T2V)
    run_once(Runner(svc))
    loop = delivery.DeliveryLoop(svc, resolver=lambda host, port: ["10.1.2.3"])
    assert loop.run_once() == 1
    [row] = webhooks.list_deliveries(svc)
    assert row.status == "failed" and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("refused")
    assert webhooks.replay(svc, [row.id]) == [row.id]
    assert webhooks.list_deliveries(svc, status="pending")[0].attempts == 0


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "http://user:pw@example.com/", "http://127.0.0.1/", "", 5]
)
def test_check_target_refuses(services: Services, url: object) -> None:
    with pytest.raises(InvalidParameter) as err:
        webhooks.check_target(url, services.webhook_policy, param="callBackUrl")
    assert err.value.extra["param"] == "callBackUrl"
