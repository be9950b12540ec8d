"""The webhook delivery loop: sends recorded events, retries with exponential backoff.

Runs as a thread of the API process (`reel serve`), never inside a generation worker. Every
attempt is claimed and settled in the ``webhook_deliveries`` table, so a restart loses nothing:
a claim whose sender died expires and the row is sent again. Several API processes may run the
loop at once; the claim is a guarded UPDATE, so each attempt has one sender.

One slow destination never delays another key's events: each sender slot is refilled as soon
as its attempt ends (no batch waits for its slowest member); a destination
(``scheme://host:port``) and a key each hold at most ``REEL_WEBHOOK_DESTINATION_CONCURRENCY``
slots; and a destination that times out or cannot be reached backs off as a whole
(``webhook_destinations``, shared by every API process), so its backlog is not tried row by
row. The event of a task canceled before it started gets a few attempts, not fifteen.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from sqlalchemy import select, update

from reel.db.models import ApiKey, Task, WebhookDelivery, WebhookDestination
from reel.net import FetchError, FetchPolicy, Resolver, check_url, post_bytes
from reel.service import retention, webhooks
from reel.service.clock import now
from reel.service.context import Services
from reel.types import TaskStatus

log = logging.getLogger("reel.webhooks")

_RESPONSE_KEEP = 1000
#: Attempts for the event of a task canceled while queued: it cost nothing and changed nothing.
CANCELED_WHILE_QUEUED_ATTEMPTS = 3


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
    destination: str
    payload: str
    attempts: int
    claimed_at: float = 0.0


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status_code: int | None = None
    error: str | None = None
    response: str | None = None
    #: No point retrying (the SSRF guard refused the URL, or the key has no secret).
    permanent: bool = False
    #: The destination did not answer in time or could not be reached: it backs off whole.
    unreachable: bool = False
    #: Attempts this delivery gets (fewer for a task canceled before it started).
    max_attempts: int | None = None


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
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        #: Attempts in flight in this process, per destination and per key.
        self._by_destination: Counter[str] = Counter()
        self._by_key: Counter[str] = Counter()

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
        self._wake.set()
        if self._thread is not None:
            self._thread.join(self.settings.webhook_timeout + 5)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                started = self._dispatch()
            except Exception:
                log.exception("webhook delivery pass failed; retrying")
                started = 0
            if not started:
                # until the poll interval passes or a slot frees up
                self._wake.wait(self.settings.webhook_poll_seconds)
                self._wake.clear()

    def _dispatch(self) -> int:
        """Fill the free sender slots; never waits for an attempt to end."""
        assert self._pool is not None
        with self._lock:
            free = self.settings.webhook_concurrency - sum(self._by_key.values())
        claimed = self._claim(free) if free > 0 else []
        for row in claimed:
            self._pool.submit(self._attempt_and_settle, row)
        return len(claimed)

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
        """Claim up to ``limit`` due deliveries, at most ``REEL_WEBHOOK_DESTINATION_CONCURRENCY``
        in flight per destination and per key, none to a destination that is backing off."""
        t = now()
        cap = self.settings.webhook_destination_concurrency
        due = ((WebhookDelivery.status == "pending") & (WebhookDelivery.next_attempt_at <= t)) | (
            (WebhookDelivery.status == "delivering") & (WebhookDelivery.lease_until < t)
        )
        backing_off = select(WebhookDestination.destination).where(
            WebhookDestination.backoff_until > t
        )
        with self._lock:
            full_destinations = [d for d, n in self._by_destination.items() if n >= cap]
            full_keys = [k for k, n in self._by_key.items() if n >= cap]
        eligible = (
            due
            & WebhookDelivery.destination.not_in(backing_off)
            & WebhookDelivery.destination.not_in(full_destinations)
            & WebhookDelivery.key_id.not_in(full_keys)
        )
        claimed: list[_Claimed] = []
        with self.services.db.read() as session:  # idle passes take no write lock
            if session.scalar(select(WebhookDelivery.id).where(eligible).limit(1)) is None:
                return claimed
        with self.services.db.write() as session:
            query = (
                select(WebhookDelivery.id, WebhookDelivery.destination, WebhookDelivery.key_id)
                .where(eligible)
                .order_by(WebhookDelivery.next_attempt_at)
                .limit(limit * 4)
            )
            if not self.settings.is_sqlite:
                query = query.with_for_update(skip_locked=True)
            for delivery_id, destination, key_id in session.execute(query).all():
                if len(claimed) >= limit or not self._reserve(destination, key_id, cap):
                    continue
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
                        WebhookDelivery.destination,
                        WebhookDelivery.payload,
                        WebhookDelivery.attempts,
                    )
                ).first()
                if row is None:
                    self._release(destination, key_id)
                else:
                    claimed.append(_Claimed(delivery_id, *row, claimed_at=t))
        return claimed

    def _reserve(self, destination: str, key_id: str, cap: int) -> bool:
        with self._lock:
            if self._by_destination[destination] >= cap or self._by_key[key_id] >= cap:
                return False
            self._by_destination[destination] += 1
            self._by_key[key_id] += 1
            return True

    def _release(self, destination: str, key_id: str) -> None:
        with self._lock:
            self._by_destination[destination] -= 1
            self._by_key[key_id] -= 1
            for counter, name in ((self._by_destination, destination), (self._by_key, key_id)):
                if counter[name] <= 0:
                    del counter[name]
        self._wake.set()

    def _attempt_and_settle(self, row: _Claimed) -> None:
        try:
            try:
                outcome = self.attempt(row)
            except Exception as exc:  # never let one delivery stop the loop
                log.exception("webhook %s: attempt crashed", row.id)
                outcome = Outcome(ok=False, error=f"internal error: {type(exc).__name__}")
            self._settle(row, outcome)
            try:
                self._note_destination(row, outcome)
            except Exception:  # two senders noting one destination at once: the next one will
                log.warning("webhook destination %s: could not record its health", row.destination)
        finally:
            self._release(row.destination, row.key_id)

    def attempt(self, row: _Claimed) -> Outcome:
        with self.services.db.read() as session:
            secret = session.scalar(select(ApiKey.webhook_secret).where(ApiKey.id == row.key_id))
            task = session.get(Task, row.task_id)
        if not secret:
            return Outcome(ok=False, error="the API key has no webhook secret", permanent=True)
        budget = None
        if task is not None and task.status == TaskStatus.CANCELED and task.started_at is None:
            budget = CANCELED_WHILE_QUEUED_ATTEMPTS
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
            return Outcome(ok=False, error=exc.message, unreachable=True, max_attempts=budget)
        text = result.body[:_RESPONSE_KEEP].decode("utf-8", "replace")
        if result.is_success:
            return Outcome(ok=True, status_code=result.status_code, response=text)
        return Outcome(
            ok=False,
            status_code=result.status_code,
            error=f"the receiver answered {result.status_code}",
            response=text,
            max_attempts=budget,
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
        elif outcome.permanent or row.attempts >= min(
            s.webhook_max_attempts, outcome.max_attempts or s.webhook_max_attempts
        ):
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

    def _note_destination(self, row: _Claimed, outcome: Outcome) -> None:
        """A destination that answered is healthy again; one that timed out or could not be
        reached backs off as a whole, doubling with each wave of failed attempts, shared by
        every sender."""
        t = now()
        s = self.settings
        with self.services.db.write() as session:
            known = session.get(WebhookDestination, row.destination)
            if not outcome.unreachable:
                if known is not None:
                    session.delete(known)
                return
            if known is not None and known.updated_at >= row.claimed_at:
                return  # an attempt sent alongside this one has already paused it
            if known is None:
                known = WebhookDestination(destination=row.destination, failures=0, updated_at=t)
                session.add(known)
            known.failures += 1
            delay = backoff(known.failures, base=s.webhook_backoff_base, cap=s.webhook_backoff_max)
            known.backoff_until = t + delay
            known.updated_at = t
        log.info("webhook destination %s unreachable; pausing it %.1fs", row.destination, delay)
