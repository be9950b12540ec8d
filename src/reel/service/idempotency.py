"""``Idempotency-Key`` on create requests: the first response is kept and replayed.

Scope is (API key, route, Idempotency-Key), so one key's records are never visible to another.
:func:`begin` either replays a finished request, refuses (different body: 422-class; still in
flight: 409), or hands out a :class:`Claim`. The claim is completed *inside* the transaction
that inserts and charges the task, so "task created" and "response recorded" commit together:
a crash between them leaves neither. A claim whose request died is taken over after
:data:`STALE_AFTER` seconds; the guarded completion makes sure only one owner can commit.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Final

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reel.db.models import IdempotencyRecord
from reel.db.session import changed
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import IdempotencyInProgress, IdempotencyKeyReused, InvalidParameter

#: Seconds after which an in-flight claim is presumed dead and may be taken over.
STALE_AFTER: Final = 120.0
MAX_KEY_LENGTH: Final = 255


@dataclass(frozen=True, slots=True)
class Replay:
    """The recorded first response."""

    status: int
    body: str
    task_id: str | None


@dataclass(frozen=True, slots=True)
class Claim:
    """This request owns the key until it completes or releases it."""

    record_id: int
    owner: str

    def complete(self, session: Session, *, task_id: str, status: int, body: str) -> None:
        """Record the response, in the caller's transaction; fails if the claim was lost."""
        done = changed(
            session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == self.record_id,
                    IdempotencyRecord.owner == self.owner,
                    IdempotencyRecord.state == "in_flight",
                )
                .values(state="done", task_id=task_id, response_status=status, response_body=body)
            )
        )
        if not done:
            raise IdempotencyInProgress()


def validate_key(value: str) -> str:
    if not value or len(value) > MAX_KEY_LENGTH or not value.isprintable() or not value.isascii():
        raise InvalidParameter(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters",
            param="Idempotency-Key",
        )
    return value


def fingerprint(canonical: object) -> str:
    """SHA-256 of a JSON-able value in canonical form (sorted keys, no spaces)."""
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def begin(
    services: Services, *, key_id: str, route: str, idempotency_key: str, body_hash: str
) -> Replay | Claim:
    for _ in range(2):  # a concurrent insert on PostgreSQL: read again once
        try:
            with services.db.write() as session:
                return _begin(
                    session,
                    key_id=key_id,
                    route=route,
                    idempotency_key=idempotency_key,
                    body_hash=body_hash,
                    ttl=services.settings.idempotency_ttl,
                )
        except IntegrityError:
            continue
    raise IdempotencyInProgress()


def _begin(
    session: Session,
    *,
    key_id: str,
    route: str,
    idempotency_key: str,
    body_hash: str,
    ttl: float,
) -> Replay | Claim:
    t = now()
    scope = (
        (IdempotencyRecord.key_id == key_id)
        & (IdempotencyRecord.route == route)
        & (IdempotencyRecord.idempotency_key == idempotency_key)
    )
    session.execute(delete(IdempotencyRecord).where(scope, IdempotencyRecord.expires_at <= t))
    row = session.scalars(select(IdempotencyRecord).where(scope)).first()
    owner = secrets.token_hex(12)
    if row is None:
        row = IdempotencyRecord(
            key_id=key_id,
            route=route,
            idempotency_key=idempotency_key,
            body_hash=body_hash,
            state="in_flight",
            owner=owner,
            created_at=t,
            locked_at=t,
            expires_at=t + ttl,
        )
        session.add(row)
        session.flush()
        return Claim(row.id, owner)
    if row.body_hash != body_hash:
        raise IdempotencyKeyReused()
    if row.state == "done":
        assert row.response_status is not None and row.response_body is not None
        return Replay(row.response_status, row.response_body, row.task_id)
    if row.locked_at < t - STALE_AFTER:
        taken = changed(
            session.execute(
                update(IdempotencyRecord)
                .where(
                    IdempotencyRecord.id == row.id,
                    IdempotencyRecord.owner == row.owner,
                    IdempotencyRecord.state == "in_flight",
                )
                .values(owner=owner, locked_at=t)
            )
        )
        if taken:
            return Claim(row.id, owner)
    err = IdempotencyInProgress()
    err.headers["Retry-After"] = "1"
    raise err


def release(services: Services, claim: Claim) -> None:
    """Forget an in-flight claim whose request failed, so the key can be used again."""
    with services.db.write() as session:
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == claim.record_id,
                IdempotencyRecord.owner == claim.owner,
                IdempotencyRecord.state == "in_flight",
            )
        )
