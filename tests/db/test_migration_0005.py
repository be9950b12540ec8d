"""Migration 0005 on SQLite and PostgreSQL: every key becomes its own account with its balance,
tasks and ledger entries; downgrade and upgrade again; models kept in sync."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from reel.db.migrate import current_revision, head_revision, upgrade
from tests.db.migrations import migrate_to, schema_differences

#: The rebuild of tables must hold with foreign keys enforced, as Reel runs SQLite.
SQLITE_FOREIGN_KEYS = True

TASK = (
    "INSERT INTO tasks (id, key_id, status, surface, mode, tier, model, aspect, duration_s,"
    " width, height, prompt, seed, priority, credits, extra, stage, percent, attempts,"
    " max_attempts, cancel_requested, created_at) VALUES (:id, :key, 'completed', 'seed',"
    " 'textToVideo', 'sora2', 'm', 'landscape', 10, 64, 36, 'p', 0, 0, 4, '{}', 'done',"
    " 0, 1, 3, false, :at)"
)
LEDGER = text(
    "INSERT INTO ledger_entries (key_id, task_id, kind, amount, balance_after, created_at)"
    " VALUES (:key, :task, :kind, :amount, :after, 0)"
)


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        for key_id, balance in (("key_aaaa", 6), ("key_bbbb", 30)):
            conn.execute(
                text(
                    "INSERT INTO api_keys (id, name, prefix, key_hash, balance, created_at)"
                    " VALUES (:id, :id, 'p', 'h', :b, 1)"
                ),
                {"id": key_id, "b": balance},
            )
            conn.execute(
                LEDGER, {"key": key_id, "task": None, "kind": "grant", "amount": 10, "after": 10}
            )
        conn.execute(text(TASK), {"id": "task_a", "key": "key_aaaa", "at": 2.0})
        conn.execute(
            LEDGER,
            {"key": "key_aaaa", "task": "task_a", "kind": "charge", "amount": -4, "after": 6},
        )


def test_each_key_becomes_an_account_with_its_balance_tasks_and_ledger(engine: Engine) -> None:
    migrate_to(engine, "0004")
    _seed(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        accounts = {r.id: (r.name, r.balance) for r in conn.execute(text("SELECT * FROM accounts"))}
        keys = dict(conn.execute(text("SELECT id, account_id FROM api_keys")).all())
        tasks = dict(conn.execute(text("SELECT id, account_id FROM tasks")).all())
        entries = conn.execute(
            text("SELECT key_id, account_id, kind, amount FROM ledger_entries ORDER BY id")
        ).all()
    assert accounts == {"acct_aaaa": ("key_aaaa", 6), "acct_bbbb": ("key_bbbb", 30)}
    assert keys == {"key_aaaa": "acct_aaaa", "key_bbbb": "acct_bbbb"}
    assert tasks == {"task_a": "acct_aaaa"}
    assert [tuple(e) for e in entries] == [
        ("key_aaaa", "acct_aaaa", "grant", 10),
        ("key_bbbb", "acct_bbbb", "grant", 10),
        ("key_aaaa", "acct_aaaa", "charge", -4),
    ]
    with pytest.raises(IntegrityError), engine.begin() as conn:  # the balance check moved along
        conn.execute(text("UPDATE accounts SET balance = -1 WHERE id = 'acct_aaaa'"))
    with pytest.raises(IntegrityError), engine.begin() as conn:  # constraints kept on rebuild
        conn.execute(text("UPDATE tasks SET credits = -1"))

    migrate_to(engine, "0004", down=True)
    with engine.connect() as conn:
        balances = dict(conn.execute(text("SELECT id, balance FROM api_keys")).all())
        task_keys = dict(conn.execute(text("SELECT id, key_id FROM tasks")).all())
    assert balances == {"key_aaaa": 6, "key_bbbb": 30} and task_keys == {"task_a": "key_aaaa"}
    upgrade(engine)
    assert schema_differences(engine) == []
