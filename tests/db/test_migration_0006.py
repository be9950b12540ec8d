"""Migration 0006 on SQLite and PostgreSQL: the characters table, down and up again, in step
with the models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect

from reel.db.base import Base
from reel.db.migrate import _config, upgrade
from tests import services as real


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


def test_characters_table_up_down_and_up(engine: Engine) -> None:
    _to(engine, "0006")
    columns = {c["name"] for c in inspect(engine).get_columns("characters")}
    assert columns == {"id", "key_id", "name", "frame_key", "created_at", "deleted_at"}
    _to(engine, "0005", down=True)
    assert "characters" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "characters" in inspect(engine).get_table_names()
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _reel_tables})
        diffs = [d for d in compare_metadata(context, Base.metadata) if "characters" in str(d)]
        assert diffs == []


def _reel_tables(name: str | None, type_: str, _parents: object) -> bool:
    return type_ != "table" or not (name or "").startswith("procrastinate")
