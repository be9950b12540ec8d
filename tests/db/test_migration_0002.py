"""Migration 0002 on SQLite: upgrade from 0001 with data, downgrade, and models kept in sync."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, text

from reel.db.base import Base
from reel.db.migrate import _config, current_revision, head_revision, upgrade


def test_upgrade_fills_secrets_and_downgrades(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        conn.execute(
            text(
                "INSERT INTO api_keys (id, name, prefix, key_hash, balance, created_at) "
                "VALUES ('key_a', 'a', 'p', 'h', 5, 0), ('key_b', 'b', 'q', 'i', 0, 0)"
            )
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        secrets = conn.execute(text("SELECT webhook_secret FROM api_keys")).scalars().all()
        balance = conn.execute(
            text(
                "SELECT a.balance FROM accounts a JOIN api_keys k ON k.account_id = a.id"
                " WHERE k.id = 'key_a'"
            )
        ).scalar()
    assert len(set(secrets)) == 2 and all(s.startswith("whsec_") for s in secrets)
    assert balance == 5
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0001")
    assert current_revision(engine) == "0001"
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []
    engine.dispose()
