"""What the migration tests share: moving a database to a revision, and comparing its schema
with the models (the ``engine`` fixture is in conftest.py)."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from reel.db.base import Base
from reel.db.migrate import _config


def migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)


def schema_differences(engine: Engine) -> list[object]:
    """How the database's schema differs from the models (the queue's own tables aside)."""
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _reel_tables})
        return list(compare_metadata(context, Base.metadata))


def _reel_tables(name: str | None, type_: str, _parents: object) -> bool:
    """The job queue's own tables (PostgreSQL) come from its SQL file, not from our models."""
    return type_ != "table" or not (name or "").startswith("procrastinate")
