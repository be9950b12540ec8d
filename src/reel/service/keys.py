"""API keys: shown once, stored as SHA-256 hashes, found by prefix, compared in constant time."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from reel.db.models import Account, ApiKey
from reel.service import ledger
from reel.service.clock import now
from reel.service.errors import InvalidParameter, LoginRequired, NotFound

KEY_PREFIX = "sk-reel-"
_LOOKUP_CHARS = 8


@dataclass(frozen=True, slots=True)
class IssuedKey:
    id: str
    name: str
    key: str
    credits: int
    #: Signs this key's webhook events; shown once, like ``key``.
    webhook_secret: str = ""
    #: The account it spends from and whose tasks it sees.
    account: str = ""


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _lookup_prefix(key: str) -> str | None:
    if not key.startswith(KEY_PREFIX) or len(key) < len(KEY_PREFIX) + _LOOKUP_CHARS + 16:
        return None
    return key[len(KEY_PREFIX) : len(KEY_PREFIX) + _LOOKUP_CHARS]


def issue(session: Session, *, name: str, credits: int, account_id: str | None = None) -> IssuedKey:
    """Create a key with an opening grant, in a new account named like it, or in the existing
    ``account_id``. The secret is returned here and never again."""
    name = name.strip()
    if not name or len(name) > 200:
        raise InvalidParameter("name must be 1-200 characters", param="name")
    if credits < 0:
        raise InvalidParameter("credits must be zero or more", param="credits")
    if account_id is None:
        account = Account(id="acct_" + secrets.token_hex(8), name=name, balance=0, created_at=now())
        session.add(account)
        session.flush()
        account_id = account.id
    elif session.get(Account, account_id) is None:
        raise NotFound(f"no account {account_id}")
    secret = secrets.token_urlsafe(32).replace("-", "x").replace("_", "y")
    key = KEY_PREFIX + secret
    row = ApiKey(
        id="key_" + secrets.token_hex(8),
        account_id=account_id,
        name=name,
        prefix=key[len(KEY_PREFIX) : len(KEY_PREFIX) + _LOOKUP_CHARS],
        key_hash=_hash(key),
        balance=0,
        created_at=now(),
        webhook_secret=new_webhook_secret(),
    )
    session.add(row)
    session.flush()
    if credits:
        ledger.grant(session, row.id, credits, note="opening balance")
    return IssuedKey(row.id, row.name, key, credits, row.webhook_secret or "", account_id)


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 24 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def lookup(presented: str | None) -> tuple[str, str] | None:
    """(lookup prefix, hash) of a presented key; ``None`` when it cannot be one of ours."""
    if not presented:
        return None
    prefix = _lookup_prefix(presented)
    digest = _hash(presented)
    if prefix is None:
        hmac.compare_digest(digest, digest)  # same work on the refusal path
        return None
    return prefix, digest


def authenticate(session: Session, presented: str | None) -> ApiKey:
    """The live key matching ``presented``, or :class:`LoginRequired`."""
    if not presented:
        raise LoginRequired()
    found: ApiKey | None = None
    looked_up = lookup(presented)
    if looked_up is not None:
        prefix, digest = looked_up
        for row in session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)):
            if hmac.compare_digest(row.key_hash, digest):
                found = row
    if found is None or found.revoked_at is not None:
        raise LoginRequired("Invalid or revoked API key")
    return found


def get(session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise NotFound(f"no API key {key_id}")
    return row


def list_keys(session: Session, *, account_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at)
    if account_id is not None:
        query = query.where(ApiKey.account_id == account_id)
    return list(session.scalars(query))


def revoke(session: Session, key_id: str) -> ApiKey:
    row = get(session, key_id)
    session.execute(
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    session.refresh(row)
    return row
