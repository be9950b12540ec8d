"""The credits ledger: guarded balance updates plus append-only entries, in one transaction.

Balances belong to accounts. A movement names the key that made it (its opening grant, its
task's charge and refund) and lands on that key's account; an operator's grant to an account
names no key (``account_id=``).

A task has at most one ``charge`` and one ``refund`` (unique on ``(task_id, kind)``), so a refund
written twice fails instead of paying twice; :func:`refund_task` makes that a no-op.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from reel.db.models import Account, ApiKey, LedgerEntry
from reel.service.clock import now
from reel.service.errors import InsufficientCredits, InvalidParameter, NotFound


def _add_balance(session: Session, account_id: str, amount: int) -> int:
    """Move the account's balance; the UPDATE locks its row until the transaction ends."""
    new_balance = session.execute(
        update(Account)
        .where(Account.id == account_id, Account.balance + amount >= 0)
        .values(balance=Account.balance + amount)
        .returning(Account.balance)
    ).scalar_one_or_none()
    if new_balance is None:
        if session.get(Account, account_id) is None:
            raise NotFound(f"no account {account_id}")
        raise InsufficientCredits(requiredCredits=-amount)
    return new_balance


def account_of(session: Session, key_id: str) -> str:
    account_id = session.scalar(select(ApiKey.account_id).where(ApiKey.id == key_id))
    if account_id is None:
        raise NotFound(f"no API key {key_id}")
    return account_id


def _entry(
    session: Session,
    key_id: str | None,
    kind: str,
    amount: int,
    *,
    task_id: str | None,
    note: str | None,
    account_id: str | None = None,
) -> LedgerEntry:
    if account_id is None:
        if key_id is None:
            raise InvalidParameter("a ledger entry needs a key or an account", param="key")
        account_id = account_of(session, key_id)
    balance = _add_balance(session, account_id, amount)
    entry = LedgerEntry(
        account_id=account_id,
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


def grant(
    session: Session,
    key_id: str | None,
    credits: int,
    *,
    note: str | None = None,
    account_id: str | None = None,
) -> LedgerEntry:
    """Credits to the account of ``key_id``, or to ``account_id`` (then ``key_id`` is None)."""
    if credits <= 0:
        raise InvalidParameter("credits to add must be positive", param="credits")
    return _entry(session, key_id, "grant", credits, task_id=None, note=note, account_id=account_id)


def adjust(
    session: Session,
    key_id: str | None,
    credits: int,
    *,
    note: str | None = None,
    account_id: str | None = None,
) -> LedgerEntry:
    """An operator's correction, positive or negative; never below zero."""
    if credits == 0:
        raise InvalidParameter("adjustment must not be zero", param="credits")
    return _entry(
        session, key_id, "adjust", credits, task_id=None, note=note, account_id=account_id
    )


def charge_task(
    session: Session, key_id: str, task_id: str, credits: int, *, account_id: str | None = None
) -> LedgerEntry:
    """Reserve a task's price from the key's account (locking its row); raises
    :class:`InsufficientCredits` and changes nothing if short."""
    return _entry(
        session, key_id, "charge", -credits, task_id=task_id, note=None, account_id=account_id
    )


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
                session,
                charge.key_id,
                "refund",
                -charge.amount,
                task_id=task_id,
                note=note,
                account_id=charge.account_id,
            )
    except IntegrityError:  # a concurrent refund won the unique (task_id, kind)
        return None


def history(session: Session, key_id: str, *, limit: int = 20) -> list[LedgerEntry]:
    """The movements this key made (its account's balance after each), newest first."""
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.key_id == key_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
    )


def account_history(session: Session, account_id: str, *, limit: int = 20) -> list[LedgerEntry]:
    """Every movement of the account, whichever key made it, newest first."""
    return list(
        session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.account_id == account_id)
            .order_by(LedgerEntry.id.desc())
            .limit(limit)
        )
    )
