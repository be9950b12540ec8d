"""ORM rows. Times are UNIX epoch seconds (float) so SQLite and PostgreSQL compare them alike."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, column_property, mapped_column

from reel.db.base import Base


class Account(Base):
    """Who pays: the credit balance, the ledger, the quotas and the tasks belong to an account;
    an account has any number of keys."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_non_negative"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    balance: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    #: Credits its tasks may keep per UTC day / calendar month (refunds give them back).
    daily_credits: Mapped[int | None] = mapped_column(Integer, default=None)
    monthly_credits: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Videos (tasks not refunded) it may create per UTC day.
    daily_videos: Mapped[int | None] = mapped_column(Integer, default=None)
    #: Creations per hour across all its keys, on top of each key's own limit.
    creates_per_hour: Mapped[int | None] = mapped_column(Integer, default=None)


class ApiKey(Base):
    """An API key: it spends from its account's balance and sees its account's tasks."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    #: First characters of the secret, for lookup; not secret on their own.
    prefix: Mapped[str] = mapped_column(String(16), index=True)
    #: SHA-256 hex of the whole key; the key itself is never stored.
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Where this key's webhook events go (``reel keys webhook``); a task's callBackUrl wins.
    webhook_url: Mapped[str | None] = mapped_column(String(2048), default=None)
    #: Standard Webhooks signing secret (``whsec_…``); kept to sign, shown to its owner once.
    webhook_secret: Mapped[str | None] = mapped_column(String(100), default=None)
    #: Its account's balance, read with the key (read-only: the ledger changes it).
    balance: Mapped[int] = column_property(
        select(Account.balance).where(Account.id == account_id).scalar_subquery()
    )


def _account_of_key(context: DefaultExecutionContext) -> str | None:
    """A row that names a key and no account belongs to the key's account."""
    key_id = context.get_current_parameters().get("key_id")
    if key_id is None:
        return None
    keys = ApiKey.__table__
    return context.connection.scalar(select(keys.c.account_id).where(keys.c.id == key_id))


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_claim", "status", "model", "priority", "created_at"),
        Index("ix_tasks_key_created", "key_id", "created_at"),
        Index("ix_tasks_account_created", "account_id", "created_at"),
        Index("ix_tasks_status_finished", "status", "finished_at"),
        CheckConstraint("credits >= 0", name="credits_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The key that created it; the task belongs to (and is seen by every key of) its account.
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), default=_account_of_key)
    status: Mapped[str] = mapped_column(String(16))
    #: Which API surface created it ("seed" | "openai"): decides how it is shown.
    surface: Mapped[str] = mapped_column(String(16), default="seed")
    mode: Mapped[str] = mapped_column(String(16))
    tier: Mapped[str] = mapped_column(String(32))
    #: The models-file entry that serves it; also its queue name.
    model: Mapped[str] = mapped_column(String(64))
    aspect: Mapped[str] = mapped_column(String(16))
    duration_s: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    prompt: Mapped[str] = mapped_column(Text)
    #: Storage key of the validated input image (image-to-video).
    image_key: Mapped[str | None] = mapped_column(String(200), default=None)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    credits: Mapped[int] = mapped_column(Integer)
    extra: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)

    stage: Mapped[str] = mapped_column(String(16), default="queued")
    percent: Mapped[float] = mapped_column(Float, default=0.0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    worker_id: Mapped[str | None] = mapped_column(String(64), default=None)
    lease_until: Mapped[float | None] = mapped_column(Float, default=None)
    cancel_requested: Mapped[bool] = mapped_column(default=False)

    engine: Mapped[str | None] = mapped_column(String(32), default=None)
    video_key: Mapped[str | None] = mapped_column(String(200), default=None)
    error_code: Mapped[str | None] = mapped_column(String(40), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)

    created_at: Mapped[float] = mapped_column(Float)
    started_at: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Seconds the engine spent on the attempt that completed.
    generation_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    #: Its owner deleted it (``DELETE /v1/videos/{id}``): hidden from both surfaces.
    deleted_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: Its stored files were removed (retention sweep or delete).
    purged_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: An operator's retry: ``<failed task id>:<n>``, its n-th retry (from 0). Unique, so two
    #: concurrent retries of one task cannot both be inserted, nor charged.
    retry_key: Mapped[str | None] = mapped_column(String(56), default=None, index=True, unique=True)


class LedgerEntry(Base):
    """Append-only credit movements. A task has at most one charge and one refund."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("task_id", "kind", name="one_per_task_kind"),
        CheckConstraint("kind IN ('grant', 'charge', 'refund', 'adjust')", name="kind_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.id"), index=True, default=_account_of_key
    )
    #: The key that made the movement (its opening grant, its task's charge); ``None`` for an
    #: operator's grant to the account.
    key_id: Mapped[str | None] = mapped_column(ForeignKey("api_keys.id"), index=True, default=None)
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), default=None)
    kind: Mapped[str] = mapped_column(String(16))
    #: Signed: grants and refunds positive, charges negative.
    amount: Mapped[int] = mapped_column(Integer)
    balance_after: Mapped[int] = mapped_column(Integer)
    note: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[float] = mapped_column(Float)


class Worker(Base):
    """A live worker process advertises itself here (heartbeat row)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(200))
    pid: Mapped[int] = mapped_column(Integer)
    models: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: Per model, what it does besides generating ("extend", "edit", "references"), as the
    #: worker's engines declare it; ``None`` from workers older than this column.
    operations: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, default=None)
    current_task: Mapped[str | None] = mapped_column(String(40), default=None)
    task_started_at: Mapped[float | None] = mapped_column(Float, default=None)
    started_at: Mapped[float] = mapped_column(Float)
    last_seen: Mapped[float] = mapped_column(Float)


class WebhookDelivery(Base):
    """One event for one target URL: the outbox row and the record of every attempt."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("task_id", "event", name="one_per_task_event"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        CheckConstraint(
            "status IN ('pending', 'delivering', 'succeeded', 'failed')", name="status_known"
        ),
    )

    #: Also the ``webhook-id`` header and the event's ``id``: stable across retries.
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id"))
    #: ``video.completed`` | ``video.failed`` | ``video.canceled``
    event: Mapped[str] = mapped_column(String(40))
    url: Mapped[str] = mapped_column(String(2048))
    #: The URL's ``scheme://host:port``: deliveries to one destination share its concurrency
    #: and its backoff (``webhook_destinations``).
    destination: Mapped[str] = mapped_column(String(300), default="")
    #: The event body (JSON) as recorded with the task's final transition.
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float)
    #: A sender's claim on a ``delivering`` row; an expired one is taken over.
    lease_until: Mapped[float | None] = mapped_column(Float, default=None)
    last_attempt_at: Mapped[float | None] = mapped_column(Float, default=None)
    last_status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    #: The start of the receiver's last answer.
    last_response: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float, default=None)


class WebhookDestination(Base):
    """A webhook destination (``scheme://host:port``) that stopped answering: it backs off as a
    whole, shared by every delivery loop, so it holds no sender that another key's events need."""

    __tablename__ = "webhook_destinations"

    destination: Mapped[str] = mapped_column(String(300), primary_key=True)
    #: Consecutive attempts that timed out or could not connect.
    failures: Mapped[int] = mapped_column(Integer, default=0)
    #: No delivery to this destination is claimed before this time.
    backoff_until: Mapped[float] = mapped_column(Float, default=0.0)
    updated_at: Mapped[float] = mapped_column(Float)


class AdminSession(Base):
    """A signed-in admin console session; signing out deletes it, and with it the session."""

    __tablename__ = "admin_sessions"

    #: SHA-256 hex of the session's nonce (the cookie carries the nonce, never stored).
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: Which admin token signed it in (an HMAC tag): rows of an older token never count.
    token_tag: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class IdempotencyRecord(Base):
    """The first response to a create request sent with an ``Idempotency-Key``."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        UniqueConstraint("key_id", "route", "idempotency_key", name="one_per_key_route"),
        CheckConstraint("state IN ('in_flight', 'done')", name="state_known"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"))
    route: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    #: SHA-256 of the canonical request body.
    body_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    #: Which request holds an ``in_flight`` row (its claim can be taken over when stale).
    owner: Mapped[str] = mapped_column(String(32))
    task_id: Mapped[str | None] = mapped_column(ForeignKey("tasks.id"), default=None)
    response_status: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[float] = mapped_column(Float)
    locked_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class Character(Base):
    """A reusable character of one API key: a name and reference frames from a short video."""

    __tablename__ = "characters"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    key_id: Mapped[str] = mapped_column(ForeignKey("api_keys.id"), index=True)
    #: Named verbatim in a prompt to use it.
    name: Mapped[str] = mapped_column(String(80))
    #: Storage keys of its reference frames (PNG), in the order of its video.
    frame_keys: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    #: Gone for new creates from then on (its key's holder, an operator, or the sweep).
    deleted_at: Mapped[float | None] = mapped_column(Float, default=None)
    #: When its frames were removed from storage; a deleted character without it still has
    #: files for the retention sweep to remove.
    purged_at: Mapped[float | None] = mapped_column(Float, default=None)


class AuditEntry(Base):
    """An operator's action (key, credits, limits, retry, cancel, sign-in): append-only."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    #: Who: ``cli:<user>`` or ``console`` (with the session's tag).
    actor: Mapped[str] = mapped_column(String(200))
    #: What: ``key.create``, ``key.revoke``, ``credits.grant``, ``account.limits``, …
    action: Mapped[str] = mapped_column(String(40))
    #: On what: a key, account or task id.
    target: Mapped[str] = mapped_column(String(200), index=True)
    before: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
    after: Mapped[dict[str, object] | None] = mapped_column(JSON, default=None)
