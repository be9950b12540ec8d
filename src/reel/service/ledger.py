"""The credits ledger: guarded balance updates plus append-only entries, in one transaction.

A task has at most one ``charge`` and one ``refund`` (unique on ``(task_id, kind)``), so a refund
written twice fails instead of paying twice; :func:`refund_task` makes that a no-op.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, LedgerEntry
from reel.service.clock import now
from reel.service.errors import InsufficientCredits, InvalidParameter, NotFound


def _add_balance(session: Session, key_id: str, amount: int) -> int:
    new_balance = session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.balance + amount >= 0)
        .values(balance=ApiKey.balance + amount)
        .returning(ApiKey.balance)
    ).scalar_one_or_none()
    if new_balance is None:
        if session.get(ApiKey, key_id) is None:
            raise NotFound(f"no API key {key_id}")
        raise InsufficientCredits(requiredCredits=-amount)
    return new_balance


def _entry(
    session: Session, key_id: str, kind: str, amount: int, *, task_id: str | None, note: str | None
) -> LedgerEntry:
    balance = _add_balance(session, key_id, amount)
    entry = LedgerEntry(
        key_id=key_id,
        task_id=task_id,
        kind=kind,
        amount=amount,
        balance_after=balance,
        note=note,
        created_at=now(),
    )
    session.add(entry)
    session.flush()
    return entry


def grant(session: Session, key_id: str, credits: int, *, note: str | None = None) -> LedgerEntry:
    if credits <= 0:
        raise InvalidParameter("credits to add must be positive", param="credits")
    return _entry(session, key_id, "grant", credits, task_id=None, note=note)


def adjust(session: Session, key_id: str, credits: int, *, note: str | None = None) -> LedgerEntry:
    """An operator's correction, positive or negative; never below zero."""
    if credits == 0:
        raise InvalidParameter("adjustment must not be zero", param="credits")
    return _entry(session, key_id, "adjust", credits, task_id=None, note=note)


def charge_task(session: Session, key_id: str, task_id: str, credits: int) -> LedgerEntry:
    """Reserve a task's price; raises :class:`InsufficientCredits` and changes nothing if short."""
    return _entry(session, key_id, "charge", -credits, task_id=task_id, note=None)


def refund_task(session: Session, task_id: str, *, note: str | None = None) -> LedgerEntry | None:
    """Give back a task's charge exactly once; ``None`` when already refunded or never charged."""
    charge = session.scalars(
        select(LedgerEntry).where(LedgerEntry.task_id == task_id, LedgerEntry.kind == "charge")
    ).first()
    if charge is None:
        return None
    already = session.scalars(
        select(LedgerEntry.id).where(LedgerEntry.task_id == task_id, LedgerEntry.kind == "refund")
    ).first()
    if already is not None:
        return None
    try:
        with session.begin_nested():
            return _entry(
                session, charge.key_id, "refund", -charge.amount, task_id=task_id, note=note
            )
    except IntegrityError:  # a concurrent refund won the unique (task_id, kind)
        return None


def history(session: Session, key_id: str, *, limit: int = 20) -> list[LedgerEntry]:
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.key_id == key_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
    )
