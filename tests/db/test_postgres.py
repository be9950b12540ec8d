"""PostgreSQL specifics: dropped connections, outages, stale schemas."""

from __future__ import annotations

import psycopg
import pytest
from fastapi.testclient import TestClient

from reel.config import Settings
from reel.db.migrate import StaleSchema, ensure_current
from reel.db.session import make_engine
from reel.service.context import Services
from tests import services as real
from tests.conftest import auth
from tests.factories import make_key

pytestmark = pytest.mark.services


@pytest.fixture
def backend() -> str:
    return "scaled"


def _admin(sql: str) -> None:
    with psycopg.connect(real.PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _kick(database: str) -> None:
    _admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        f" WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    )


def test_dropped_connections_are_replaced_and_outages_answer_503(
    client: TestClient, services: Services, settings: Settings
) -> None:
    key = make_key(services, credits=10).key
    database = settings.resolved_database_url.rsplit("/", 1)[1]
    assert client.get("/api/sora-2/account", headers=auth(key)).status_code == 200
    _kick(database)  # e.g. a PostgreSQL restart: every pooled connection is dead
    assert client.get("/api/sora-2/account", headers=auth(key)).status_code == 200
    _admin(f"ALTER DATABASE {database} ALLOW_CONNECTIONS false")
    try:
        _kick(database)
        r = client.get("/api/sora-2/account", headers=auth(key))
        assert r.status_code == 503 and r.json()["errorCode"] == "SERVICE_BUSY"
        assert r.headers["Retry-After"]
    finally:
        _admin(f"ALTER DATABASE {database} ALLOW_CONNECTIONS true")
    assert client.get("/api/sora-2/account", headers=auth(key)).status_code == 200


def test_unmigrated_database_is_refused(postgres: real.Postgres, tmp_path: object) -> None:
    engine = make_engine(Settings(database_url=postgres.new_database(migrated=False)))
    try:
        with pytest.raises(StaleSchema, match="reel migrate"):
            ensure_current(engine)
    finally:
        engine.dispose()
