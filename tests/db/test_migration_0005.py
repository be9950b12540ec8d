"""Migration 0005 on SQLite and PostgreSQL: every key becomes its own account with its balance,
tasks and ledger entries; downgrade and upgrade again; models kept in sync."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.exc import IntegrityError

from reel.db.base import Base
from reel.db.migrate import _config, current_revision, head_revision, upgrade
from tests import services as real

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


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")

        @event.listens_for(eng, "connect")
        def _fk_on(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]  # as reel runs it
            dbapi_conn.execute("PRAGMA foreign_keys=ON")

        yield eng
        eng.dispose()
        return
    pg: real.Postgres = request.getfixturevalue("postgres")
    eng = create_engine(pg.new_database(migrated=False))
    yield eng
    eng.dispose()


def _to(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


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
    _to(engine, "0004")
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

    _to(engine, "0004", down=True)
    with engine.connect() as conn:
        balances = dict(conn.execute(text("SELECT id, balance FROM api_keys")).all())
        task_keys = dict(conn.execute(text("SELECT id, key_id FROM tasks")).all())
    assert balances == {"key_aaaa": 6, "key_bbbb": 30} and task_keys == {"task_a": "key_aaaa"}
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _reel_tables})
        assert compare_metadata(context, Base.metadata) == []


def _reel_tables(name: str | None, type_: str, _parents: object) -> bool:
    """The job queue's own tables (PostgreSQL) come from its SQL file, not from our models."""
    return type_ != "table" or not (name or "").startswith("procrastinate")
