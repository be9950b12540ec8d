"""accounts and the audit log

- ``accounts``: the balance, quotas and an optional per-account creation limit. Every existing
  key becomes its own account (``acct_`` + the key id's tail) with the key's name, balance
  and creation time.
- ``api_keys.account_id`` (the balance moves to the account), ``tasks.account_id`` and
  ``ledger_entries.account_id`` filled from each row's key; a ledger entry's ``key_id`` may be
  empty (an operator's grant to an account).
- ``audit_log``: operators' actions, append-only.

On SQLite the changed tables are rebuilt (batch mode), with foreign keys switched off for the
duration, as SQLite's ALTER TABLE procedure asks.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 10:15:00
"""

from __future__ import annotations

from typing import Literal

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def account_id_for(key_id: str) -> str:
    """The account a pre-accounts key becomes: ``key_1a2b…`` → ``acct_1a2b…``."""
    return ("acct_" + key_id.removeprefix("key_"))[:32]


def upgrade() -> None:
    bind = op.get_bind()
    restore_fk = _foreign_keys_off(bind)
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("balance", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("daily_credits", sa.Integer(), nullable=True),
        sa.Column("monthly_credits", sa.Integer(), nullable=True),
        sa.Column("daily_videos", sa.Integer(), nullable=True),
        sa.Column("creates_per_hour", sa.Integer(), nullable=True),
        sa.CheckConstraint("balance >= 0", name=op.f("ck_accounts_balance_non_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
    )
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("account_id", sa.String(length=32), nullable=True))
    rows = bind.execute(sa.text("SELECT id, name, balance, created_at FROM api_keys")).all()
    for key_id, name, balance, created_at in rows:
        account = account_id_for(key_id)
        bind.execute(
            sa.text(
                "INSERT INTO accounts (id, name, balance, created_at)"
                " VALUES (:id, :name, :balance, :at)"
            ),
            {"id": account, "name": name, "balance": balance, "at": created_at},
        )
        bind.execute(
            sa.text("UPDATE api_keys SET account_id = :a WHERE id = :k"),
            {"a": account, "k": key_id},
        )
    with op.batch_alter_table("api_keys", recreate=_rebuild()) as batch:
        batch.alter_column("account_id", existing_type=sa.String(length=32), nullable=False)
        batch.create_foreign_key(
            batch.f("fk_api_keys_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )
        batch.create_index(batch.f("ix_api_keys_account_id"), ["account_id"], unique=False)
        batch.drop_constraint(batch.f("ck_api_keys_balance_non_negative"), type_="check")
        batch.drop_column("balance")

    of_key = "(SELECT account_id FROM api_keys WHERE api_keys.id = {}.key_id)"
    for table in ("tasks", "ledger_entries"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("account_id", sa.String(length=32), nullable=True))
        bind.execute(sa.text(f"UPDATE {table} SET account_id = {of_key.format(table)}"))
    with op.batch_alter_table("tasks", recreate=_rebuild()) as batch:
        batch.alter_column("account_id", existing_type=sa.String(length=32), nullable=False)
        batch.create_foreign_key(
            batch.f("fk_tasks_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )
        batch.create_index("ix_tasks_account_created", ["account_id", "created_at"], unique=False)
    with op.batch_alter_table("ledger_entries", recreate=_rebuild()) as batch:
        batch.alter_column("account_id", existing_type=sa.String(length=32), nullable=False)
        batch.alter_column("key_id", existing_type=sa.String(length=32), nullable=True)
        batch.create_foreign_key(
            batch.f("fk_ledger_entries_account_id_accounts"), "accounts", ["account_id"], ["id"]
        )
        batch.create_index(batch.f("ix_ledger_entries_account_id"), ["account_id"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_target"), "audit_log", ["target"], unique=False)
    restore_fk()


def downgrade() -> None:
    """Back to one balance per key: an account's balance goes to its oldest key; its
    keyless ledger entries are recorded against that key. The audit log is dropped."""
    bind = op.get_bind()
    restore_fk = _foreign_keys_off(bind)
    op.drop_index(op.f("ix_audit_log_target"), table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")

    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("balance", sa.Integer(), nullable=False, server_default="0"))
    oldest = (
        "(SELECT k.id FROM api_keys k WHERE k.account_id = {} ORDER BY k.created_at, k.id LIMIT 1)"
    )
    bind.execute(
        sa.text(
            "UPDATE api_keys SET balance = (SELECT a.balance FROM accounts a"
            " WHERE a.id = api_keys.account_id)"
            f" WHERE api_keys.id = {oldest.format('api_keys.account_id')}"
        )
    )
    bind.execute(
        sa.text(
            "UPDATE ledger_entries SET key_id = "
            f"{oldest.format('ledger_entries.account_id')} WHERE key_id IS NULL"
        )
    )
    with op.batch_alter_table("ledger_entries", recreate=_rebuild()) as batch:
        batch.drop_index(batch.f("ix_ledger_entries_account_id"))
        batch.drop_constraint(batch.f("fk_ledger_entries_account_id_accounts"), type_="foreignkey")
        batch.alter_column("key_id", existing_type=sa.String(length=32), nullable=False)
        batch.drop_column("account_id")
    with op.batch_alter_table("tasks", recreate=_rebuild()) as batch:
        batch.drop_index("ix_tasks_account_created")
        batch.drop_constraint(batch.f("fk_tasks_account_id_accounts"), type_="foreignkey")
        batch.drop_column("account_id")
    with op.batch_alter_table("api_keys", recreate=_rebuild()) as batch:
        batch.alter_column("balance", existing_type=sa.Integer(), server_default=None)
        batch.create_check_constraint(batch.f("ck_api_keys_balance_non_negative"), "balance >= 0")
        batch.drop_index(batch.f("ix_api_keys_account_id"))
        batch.drop_constraint(batch.f("fk_api_keys_account_id_accounts"), type_="foreignkey")
        batch.drop_column("account_id")
    op.drop_table("accounts")
    restore_fk()


def _rebuild() -> Literal["always", "auto"]:
    """SQLite rebuilds a table to change it (its CHECK and foreign keys kept); PostgreSQL alters."""
    return "always" if op.get_bind().dialect.name == "sqlite" else "auto"


def _foreign_keys_off(bind: sa.Connection):
    """SQLite rebuilds tables to change them; with foreign keys on, dropping a referenced table
    fails. Switch them off (outside a transaction SQLite honours it) and back on after."""
    if bind.dialect.name != "sqlite":
        return lambda: None
    was_on = bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar())
    if not was_on:
        return lambda: None
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("cannot switch SQLite foreign keys off inside a transaction")

    def restore() -> None:
        bind.exec_driver_sql("PRAGMA foreign_keys=ON")

    return restore
