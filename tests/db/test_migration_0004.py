"""Migration 0004 on SQLite and PostgreSQL: existing retries numbered, destinations filled,
downgrade and upgrade again, models kept in sync, one retry per task enforced."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import IntegrityError

from reel.db.base import Base
from reel.db.migrate import _config, current_revision, head_revision, upgrade
from tests import services as real

TASK = (
    "INSERT INTO tasks (id, key_id, status, surface, mode, tier, model, aspect, duration_s,"
    " width, height, prompt, seed, priority, credits, extra, stage, percent, attempts,"
    " max_attempts, cancel_requested, created_at) VALUES (:id, 'key_a', 'failed', 'seed',"
    " 'textToVideo', 'sora2', 'm', 'landscape', 10, 64, 36, 'p', 0, 0, 5, :extra, 'failed',"
    " 0, 1, 3, false, :at)"
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
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


def test_upgrade_links_retries_fills_destinations_and_downgrades(engine: Engine) -> None:
    _to(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (id, name, prefix, key_hash, balance, created_at)"
                " VALUES ('key_a', 'a', 'p', 'h', 5, 0)"
            )
        )
        for task_id, extra, at in [
            ("task_orig", {}, 1.0),
            ("task_r1", {"retryOf": "task_orig"}, 2.0),
            ("task_r2", {"retryOf": "task_orig"}, 3.0),
        ]:
            conn.execute(text(TASK), {"id": task_id, "extra": json.dumps(extra), "at": at})
        conn.execute(
            text(
                "INSERT INTO webhook_deliveries (id, key_id, task_id, event, url, payload, status,"
                " attempts, next_attempt_at, created_at) VALUES ('msg_1', 'key_a', 'task_orig',"
                " 'video.failed', 'HTTPS://Hooks.Example.com/x?y=1', '{}', 'pending', 0, 0, 0)"
            )
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        links = dict(conn.execute(text("SELECT id, retry_key FROM tasks")).all())
        destination = conn.execute(text("SELECT destination FROM webhook_deliveries")).scalar()
    assert links == {"task_orig": None, "task_r1": "task_orig:0", "task_r2": "task_orig:1"}
    assert destination == "https://hooks.example.com:443"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET retry_key = 'task_orig:1' WHERE id = 'task_orig'"))

    _to(engine, "0003", down=True)
    assert current_revision(engine) == "0003"
    upgrade(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _reel_tables})
        assert compare_metadata(context, Base.metadata) == []


def _reel_tables(name: str | None, type_: str, _parents: object) -> bool:
    """The job queue's own tables (PostgreSQL) come from its SQL file, not from our models."""
    return type_ != "table" or not (name or "").startswith("procrastinate")
