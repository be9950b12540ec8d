"""A fresh, empty database of each kind for the migration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, event

from tests import services as real


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database, not migrated: SQLite, or a new PostgreSQL database. A module that sets
    ``SQLITE_FOREIGN_KEYS = True`` gets SQLite with foreign keys on, as Reel runs it."""
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
        if getattr(request.module, "SQLITE_FOREIGN_KEYS", False):

            @event.listens_for(eng, "connect")
            def _fk_on(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
                dbapi_conn.execute("PRAGMA foreign_keys=ON")

        yield eng
        eng.dispose()
        return
    pg: real.Postgres = request.getfixturevalue("postgres")
    eng = create_engine(pg.new_database(migrated=False))
    yield eng
    eng.dispose()
