"""Webhook events: signing secrets, Standard Webhooks signatures, and the outbox.

An event is recorded by :func:`record_event` inside the transaction that moves a task to its
final status, so a task can never finish without its event or emit one it did not reach.
``reel.service.delivery`` sends the recorded rows. Signatures follow Standard Webhooks: headers
``webhook-id``, ``webhook-timestamp`` and ``webhook-signature`` = ``v1,`` + base64 of
HMAC-SHA256 over ``id.timestamp.body``, keyed with the base64 part of the ``whsec_`` secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, Task, WebhookDelivery
from reel.net import FetchError, FetchPolicy, check_url
from reel.service import keys
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import InvalidParameter
from reel.types import TaskStatus

SECRET_PREFIX: Final = "whsec_"

#: The event each final status emits.
EVENTS: Final[Mapping[TaskStatus, str]] = {
    TaskStatus.COMPLETED: "video.completed",
    TaskStatus.FAILED: "video.failed",
    TaskStatus.CANCELED: "video.canceled",
}

MAX_URL_LENGTH: Final = 2048


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id, timestamp, body),
    }


def check_target(url: object, policy: FetchPolicy, *, param: str) -> str:
    """A webhook URL the SSRF guard accepts now (it is checked again at every attempt)."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidParameter(f"{param} must be an http(s) URL", param=param)
    url = url.strip()
    if len(url) > MAX_URL_LENGTH:
        raise InvalidParameter(f"{param} must be at most {MAX_URL_LENGTH} characters", param=param)
    try:
        check_url(url, policy)
    except FetchError as exc:
        raise InvalidParameter(f"{param}: {exc.message}", param=param) from exc
    return url


def set_url(session: Session, key_id: str, url: str | None) -> ApiKey:
    key = _key(session, key_id)
    key.webhook_url = url
    if key.webhook_secret is None:
        key.webhook_secret = keys.new_webhook_secret()
    session.flush()
    return key


def rotate_secret(session: Session, key_id: str) -> str:
    """Replace a key's signing secret; pending deliveries are signed with the new one."""
    key = _key(session, key_id)
    key.webhook_secret = keys.new_webhook_secret()
    session.flush()
    return key.webhook_secret


def _key(session: Session, key_id: str) -> ApiKey:
    return keys.get(session, key_id)


def destination_of(url: str) -> str:
    """``scheme://host:port`` of a webhook URL: deliveries to it share its sender slots and,
    when it stops answering, its backoff."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"[:300]


def event_payload(task: Task, event: str, event_id: str, created_at: float) -> dict[str, object]:
    """The event body: OpenAI's event envelope, with the task's outcome in ``data``."""
    failed = task.status != TaskStatus.COMPLETED
    data: dict[str, object] = {
        "id": task.id,
        "taskId": task.id,
        "object": "video",
        "status": "failed" if failed else "completed",
        "surface": task.surface,
        # what the client asked for: the OpenAI model name, or the seed tier
        "model": task.extra.get("openaiModel", task.tier) if task.extra else task.tier,
        "canceled": task.status == TaskStatus.CANCELED,
    }
    if failed:
        data["errorCode"] = task.error_code or "GENERATION_FAILED"
        data["error"] = task.error_message or "Video generation failed"
        data["creditsRefunded"] = task.credits
    else:
        data["creditsUsed"] = task.credits
    return {
        "id": event_id,
        "object": "event",
        "type": event,
        "created_at": int(created_at),
        "data": data,
    }


def record_event(session: Session, task_id: str, status: TaskStatus) -> WebhookDelivery | None:
    """Queue the event for the task's final ``status``, in the caller's transaction.

    The target is the task's ``callBackUrl``, else its key's webhook URL; with neither, there is
    nothing to send. Recording the same event twice is a no-op.
    """
    event = EVENTS[status]
    task = session.get(Task, task_id, populate_existing=True)
    if task is None:
        return None
    callback = task.extra.get("callBackUrl") if isinstance(task.extra, dict) else None
    url = callback if isinstance(callback, str) else None
    if not isinstance(url, str):
        url = session.scalar(select(ApiKey.webhook_url).where(ApiKey.id == task.key_id))
    if not url:
        return None
    t = now()
    delivery_id = "msg_" + secrets.token_hex(12)
    row = WebhookDelivery(
        id=delivery_id,
        key_id=task.key_id,
        task_id=task.id,
        event=event,
        url=url,
        destination=destination_of(url),
        payload=json.dumps(event_payload(task, event, delivery_id, t), separators=(",", ":")),
        status="pending",
        attempts=0,
        next_attempt_at=t,
        created_at=t,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # already recorded for this task and event
        return None
    return row


# --- operators: list and replay ---------------------------------------------------------------


def replay(
    services: Services, delivery_ids: list[str] | None = None, *, failed: bool = False
) -> list[str]:
    """Send deliveries again from scratch (same ``webhook-id``): the given ids, or every failed
    one with ``failed=True``. Returns the ids queued."""
    with services.db.write() as session:
        query = select(WebhookDelivery.id)
        if delivery_ids:
            query = query.where(WebhookDelivery.id.in_(delivery_ids))
        elif failed:
            query = query.where(WebhookDelivery.status == "failed")
        else:
            return []
        # a row being sent right now is left to its sender
        ids = list(session.scalars(query.where(WebhookDelivery.status != "delivering")))
        if ids:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(ids), WebhookDelivery.status != "delivering")
                .values(status="pending", attempts=0, next_attempt_at=now(), lease_until=None)
            )
    return ids


def list_deliveries(
    services: Services, *, key_id: str | None = None, status: str | None = None, limit: int = 50
) -> list[WebhookDelivery]:
    with services.db.read() as session:
        query = select(WebhookDelivery)
        if key_id:
            query = query.where(WebhookDelivery.key_id == key_id)
        if status:
            query = query.where(WebhookDelivery.status == status)
        return list(session.scalars(query.order_by(WebhookDelivery.created_at.desc()).limit(limit)))
