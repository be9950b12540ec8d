"""one retry per task, webhook destinations, admin sessions

- ``tasks.retry_key`` (unique): an operator's retry is the n-th retry of a failed task
  (``<task id>:<n>``), so two concurrent retries of one task cannot both be inserted (or
  charged). Existing retries, found through ``extra["retryOf"]``, are numbered by age.
- ``webhook_deliveries.destination`` (``scheme://host:port`` of the URL, filled for existing
  rows) and ``webhook_destinations``: a destination that stops answering backs off as a whole.
- ``admin_sessions``: admin console sessions live on the server, so signing out ends them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("retry_key", sa.String(length=56), nullable=True))
    _number_existing_retries()
    op.create_index(op.f("ix_tasks_retry_key"), "tasks", ["retry_key"], unique=True)

    op.add_column(
        "webhook_deliveries",
        sa.Column("destination", sa.String(length=300), nullable=False, server_default=""),
    )
    _fill_destinations()
    op.create_table(
        "webhook_destinations",
        sa.Column("destination", sa.String(length=300), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("backoff_until", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_webhook_destinations")),
    )

    op.create_table(
        "admin_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("token_tag", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_admin_sessions")),
    )
    op.create_index(
        op.f("ix_admin_sessions_expires_at"), "admin_sessions", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_admin_sessions_expires_at"), table_name="admin_sessions")
    op.drop_table("admin_sessions")
    op.drop_table("webhook_destinations")
    op.drop_column("webhook_deliveries", "destination")
    op.drop_index(op.f("ix_tasks_retry_key"), table_name="tasks")
    op.drop_column("tasks", "retry_key")  # SQLite 3.35+ drops a column in place


def destination_of(url: str) -> str:
    """``scheme://host:port`` of a webhook URL (the same rule as ``service.webhooks``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (443 if scheme == "https" else 80)
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"[:300]


def _number_existing_retries() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, extra FROM tasks WHERE CAST(extra AS TEXT) LIKE :pat"
            " ORDER BY created_at, id"
        ),
        {"pat": '%"retryOf"%'},
    ).all()
    counts: dict[str, int] = {}
    for task_id, extra in rows:
        data = json.loads(extra) if isinstance(extra, str) else extra
        origin = data.get("retryOf") if isinstance(data, dict) else None
        if isinstance(origin, str):
            n = counts[origin] = counts.get(origin, -1) + 1
            bind.execute(
                sa.text("UPDATE tasks SET retry_key = :k WHERE id = :id"),
                {"k": f"{origin}:{n}"[:56], "id": task_id},
            )


def _fill_destinations() -> None:
    bind = op.get_bind()
    for delivery_id, url in bind.execute(sa.text("SELECT id, url FROM webhook_deliveries")).all():
        bind.execute(
            sa.text("UPDATE webhook_deliveries SET destination = :d WHERE id = :id"),
            {"d": destination_of(url), "id": delivery_id},
        )
