"""Schema migrations (Alembic), run on start for SQLite and by ``reel migrate`` elsewhere."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

_SCRIPTS = Path(__file__).with_name("migrations")
_PG_LOCK_ID = 0x5EE1  # advisory lock id: one migrator at a time


class StaleSchema(RuntimeError):
    """The database is not at the revision this code expects; run ``reel migrate``."""


def _config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_SCRIPTS))
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None before the first migration), read from Alembic's version
    table without a migration context: cheap and silent, so ``/readyz`` can ask every time."""
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        versions = list(conn.execute(text("SELECT version_num FROM alembic_version")).scalars())
    if len(versions) > 1:
        raise StaleSchema(f"the database has several schema heads: {', '.join(versions)}")
    return versions[0] if versions else None


def upgrade(engine: Engine) -> None:
    """Bring the schema to head. On PostgreSQL, under an advisory lock."""
    cfg = _config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def ensure_current(engine: Engine) -> None:
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise StaleSchema(
            f"database schema is at {current or 'nothing'}, this version needs {head}: "
            "run `reel migrate`"
        )
