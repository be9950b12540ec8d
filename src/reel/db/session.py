"""Engine and session factory. SQLite runs in WAL mode; writers take ``BEGIN IMMEDIATE``."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Result, create_engine, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.pool import ConnectionPoolEntry

from reel.config import Settings

_IMMEDIATE = "reel_immediate"


class DatabaseBusy(Exception):
    """The database stayed locked past the busy timeout."""


def make_engine(settings: Settings) -> Engine:
    url = settings.resolved_database_url
    if url.startswith("sqlite"):
        settings.prepare_data_dir()
        _private_sqlite_file(url)
        engine = create_engine(
            url,
            connect_args={"timeout": settings.db_busy_timeout, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
        )
        _install_sqlite_hooks(engine, settings.db_busy_timeout)
        return engine
    # pre_ping replaces connections the server dropped (restart, failover, idle timeout)
    # before a request uses them; pool_recycle bounds a connection's age.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_recycle=1800)


def _private_sqlite_file(url: str) -> None:
    """Create the database file owner-only (0600) before SQLite opens it; tighten an older one.

    It holds webhook secrets and prompts. SQLite gives its ``-wal``/``-shm`` files the
    database file's permissions.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.close(fd)
    if path.stat().st_mode & 0o077:
        for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            with suppress(FileNotFoundError, PermissionError):
                file.chmod(0o600)


def _install_sqlite_hooks(engine: Engine, busy_timeout: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
        assert isinstance(dbapi_conn, sqlite3.Connection)
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock up front, so two writers never deadlock on upgrade.
        # Readers run each statement in its own implicit transaction (WAL: never blocked by a
        # writer), which saves a BEGIN/ROLLBACK round per request.
        if conn.get_execution_options().get(_IMMEDIATE, False):
            conn.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """Sessions for reading (deferred) and writing (``BEGIN IMMEDIATE`` on SQLite)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._writer_engine = engine.execution_options(**{_IMMEDIATE: True})

    @contextmanager
    def read(self) -> Iterator[Session]:
        with _translate_busy(), Session(self.engine, expire_on_commit=False) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One transaction: committed on success, rolled back on any exception."""
        with (
            _translate_busy(),
            Session(self._writer_engine, expire_on_commit=False) as session,
            session.begin(),
        ):
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


@contextmanager
def _translate_busy() -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        text = str(exc.orig).lower()
        if "database is locked" in text or "database is busy" in text:
            raise DatabaseBusy("the database is busy") from exc
        if exc.connection_invalidated or _is_postgres_operational(exc):
            # connection lost, server restarting, serialization failure or deadlock: nothing
            # was committed, so the client may safely retry.
            raise DatabaseBusy("the database is unavailable") from exc
        raise


def _is_postgres_operational(exc: OperationalError) -> bool:
    return type(exc.orig).__module__.startswith("psycopg")


def open_database(settings: Settings) -> Database:
    return Database(make_engine(settings))


def changed(result: Result[Any]) -> int:
    """How many rows an ``UPDATE`` or ``DELETE`` changed (``Session.execute`` is typed as a
    plain ``Result``; for these statements it is a ``CursorResult``)."""
    return cast("CursorResult[Any]", result).rowcount
