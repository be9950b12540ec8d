"""The webhook delivery loop: sends recorded events, retries with exponential backoff.

Runs as a thread of the API process (`reel serve`), never inside a generation worker. Every
attempt is claimed and settled in the ``webhook_deliveries`` table, so a restart loses nothing:
a claim whose sender died expires and the row is sent again. Several API processes may run the
loop at once; the claim is a guarded UPDATE, so each attempt has one sender.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import select, update

from reel.db.models import ApiKey, Task, WebhookDelivery
from reel.net import FetchError, FetchPolicy, Resolver, check_url, post_bytes
from reel.service import retention, webhooks
from reel.service.clock import now
from reel.service.context import Services

log = logging.getLogger("reel.webhooks")

_RESPONSE_KEEP = 1000


def backoff(attempt: int, *, base: float, cap: float, jitter: float = 0.1) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base`` doubling
    each time, at most ``cap``, spread by ±``jitter`` so retries do not arrive in step."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay * (1 + random.uniform(-jitter, jitter))


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: str
    task_id: str
    key_id: str
    url: str
    payload: str
    attempts: int


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    response: str | None = None
    #: No point retrying (the SSRF guard refused the URL, or the key has no secret).
    permanent: bool = False


class DeliveryLoop:
    """Start/stop with the app (a ``Background`` job); :meth:`run_once` for tests and tools."""

    def __init__(
        self,
        services: Services,
        *,
        base_url: str | None = None,
        resolver: Resolver | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings
        #: Where media links in event bodies point (``REEL_PUBLIC_URL`` wins).
        self.base_url = self.settings.public_url or base_url
        self._resolver = resolver
        self._transport = transport
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None

    @property
    def policy(self) -> FetchPolicy:
        return self.services.webhook_policy

    # --- background job ----------------------------------------------------------------------
    def start(self) -> None:
        if self.settings.webhook_concurrency < 1:
            return
        self._pool = ThreadPoolExecutor(
            self.settings.webhook_concurrency, thread_name_prefix="reel-webhook"
        )
        self._thread = threading.Thread(target=self._loop, name="reel-deliveries", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.settings.webhook_timeout + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
            except Exception:
                log.exception("webhook delivery pass failed; retrying")
                sent = 0
            if not sent:
                self._stop.wait(self.settings.webhook_poll_seconds)

    # --- one pass ----------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim due deliveries, send them, record each outcome. Returns how many were tried."""
        limit = max(1, self.settings.webhook_concurrency)
        claimed = self._claim(limit)
        if not claimed:
            return 0
        if self._pool is not None and len(claimed) > 1:
            list(self._pool.map(self._attempt_and_settle, claimed))
        else:
            for row in claimed:
                self._attempt_and_settle(row)
        return len(claimed)

    def _claim(self, limit: int) -> list[_Claimed]:
        t = now()
        due = ((WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= t)) | (
            (WebhookDelivery.status == "delivering") & (WebhookDelivery.lease_until < t)
        )
        claimed: list[_Claimed] = []
        with self.services.db.read() as session:  # idle passes take no write lock
            if session.scalar(select(WebhookDelivery.id).where(due).limit(1)) is None:
                return claimed
        with self.services.db.write() as session:
            query = (
                select(WebhookDelivery.id)
                .where(due)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit)
            )
            if not self.settings.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            for delivery_id in session.scalars(query).all():
                row = session.execute(
                    update(WebhookDelivery)
                    .where(WebhookDelivery.id == delivery_id, due)
                    .values(
                        status="delivering",
                        attempts=WebhookDelivery.attempts + 1,
                        lease_until=t + self.settings.webhook_timeout + 30,
                        last_attempt_at=t,
                    )
                    .returning(
                        WebhookDelivery.task_id,
                        WebhookDelivery.key_id,
                        WebhookDelivery.url,
                        WebhookDelivery.payload,
                        WebhookDelivery.attempts,
                    )
                ).first()
                if row is not None:
                    claimed.append(_Claimed(delivery_id, *row))
        return claimed

    def _attempt_and_settle(self, row: _Claimed) -> None:
        try:
            outcome = self.attempt(row)
        except Exception as exc:  # never let one delivery stop the loop
            log.exception("webhook %s: attempt crashed", row.id)
            outcome = Outcome(ok=False, error=f"internal error: {type(exc).__name__}")
        self._settle(row, outcome)

    def attempt(self, row: _Claimed) -> Outcome:
        with self.services.db.read() as session:
            secret = session.scalar(select(ApiKey.webhook_secret).where(ApiKey.id == row.key_id))
            task = session.get(Task, row.task_id)
        if not secret:
            return Outcome(ok=False, error="the API key has no webhook secret", permanent=True)
        try:
            check_url(row.url, self.policy, resolver=self._resolver)
        except FetchError as exc:
            return Outcome(ok=False, error=f"refused: {exc.message}", permanent=True)
        body = self._body(row, task)
        headers = webhooks.signed_headers(secret, row.id, int(now()), body)
        headers["User-Agent"] = "reel-webhooks"
        try:
            result = post_bytes(
                row.url,
                body,
                self.policy,
                headers=headers,
                resolver=self._resolver,
                transport=self._transport,
            )
        except FetchError as exc:
            return Outcome(ok=False, error=exc.message)
        text = result.body[:_RESPONSE_KEEP].decode("utf-8", "replace")
        if result.is_success:
            return Outcome(ok=True, status_code=result.status_code, response=text)
        return Outcome(
            ok=False,
            status_code=result.status_code,
            error=f"the receiver answered {result.status_code}",
            response=text,
        )

    def _body(self, row: _Claimed, task: Task | None) -> bytes:
        """The recorded event, plus fresh signed media links when the video still exists."""
        event: dict[str, object] = json.loads(row.payload)
        data = event.get("data")
        media = None if task is None else retention.media_of(task, self.settings)
        if (
            isinstance(data, dict)
            and task is not None
            and media is not None
            and self.base_url
            and not retention.is_expired(task, self.settings)
            and task.deleted_at is None
        ):
            ttl = self.settings.media_url_ttl
            url = self.services.storage.url
            data["videoUrl"] = url(media.video, base_url=self.base_url, expires_in=ttl)
            data["thumbnailUrl"] = url(media.thumbnail, base_url=self.base_url, expires_in=ttl)
            data["spritesheetUrl"] = url(media.spritesheet, base_url=self.base_url, expires_in=ttl)
        return json.dumps(event, separators=(",", ":")).encode()

    def _settle(self, row: _Claimed, outcome: Outcome) -> None:
        t = now()
        s = self.settings
        values: dict[str, object] = {
            "lease_until": None,
            "last_status_code": outcome.status_code,
            "last_error": outcome.error,
            "last_response": outcome.response,
        }
        if outcome.ok:
            values.update(status="succeeded", delivered_at=t)
            log.info("webhook %s delivered (attempt %d)", row.id, row.attempts)
        elif outcome.permanent or row.attempts >= s.webhook_max_attempts:
            values.update(status="failed")
            log.warning("webhook %s failed for good: %s", row.id, outcome.error)
        else:
            delay = backoff(row.attempts, base=s.webhook_backoff_base, cap=s.webhook_backoff_max)
            values.update(status="pending", next_attempt_at=t + delay)
            log.info(
                "webhook %s attempt %d failed (%s); retry in %.1fs",
                row.id,
                row.attempts,
                outcome.error,
                delay,
            )
        with self.services.db.write() as session:
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == row.id,
                    WebhookDelivery.status == "delivering",
                    WebhookDelivery.attempts == row.attempts,
                )
                .values(**values)
            )
