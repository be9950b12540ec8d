"""Shared fixtures: settings on a temp data dir, services, an in-process app, key factories."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reel.api.app import create_app
from reel.config import Settings
from reel.service.context import Services, build_services, prepare_database
from tests import services as real
from tests.factories import make_key

#: Test packages that run twice, embedded and scaled out, declare
#: ``backend = pytest.fixture(params=BACKENDS)(backend_param)`` in their conftest.py; a module
#: inside one that must stay embedded-only defines its own ``backend`` fixture returning
#: ``"embedded"``.
BACKENDS = ["embedded", pytest.param("scaled", marks=pytest.mark.services)]


def backend_param(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def backend() -> str:
    """Which deployment the ``settings`` fixture describes; ``embedded`` unless overridden."""
    return "embedded"


@pytest.fixture(scope="session")
def postgres() -> Iterator[real.Postgres]:
    pg = real.start_postgres()
    yield pg
    pg.close()


@pytest.fixture(scope="session")
def s3() -> Iterator[real.S3Server]:
    yield from real.start_s3()


@pytest.fixture
def scaled(postgres: real.Postgres, s3: real.S3Server) -> Iterator[real.Scaled]:
    """PostgreSQL + procrastinate + Redis + S3 for one test (public URL: TestClient's)."""
    real.check_redis()
    env = real.scaled_env(postgres, s3, public_url="http://testserver")
    yield env
    real.delete_redis_prefix(env.env["REEL_REDIS_PREFIX"])
    postgres.release(env.database_url)


@pytest.fixture
def settings(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Settings:
    fields: dict[str, object] = {
        "data_dir": tmp_path / "data",
        "sandbox_profile": "tiny",
        "sandbox_delay": 0.0,
        "lease_seconds": 5,
        "heartbeat_seconds": 1,
        "image_fetch_allow_hosts": ("127.0.0.1",),
    }
    if backend == "scaled":
        fields.update(request.getfixturevalue("scaled").settings_fields())
    return Settings(**fields)  # type: ignore[arg-type]


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = build_services(settings)
    prepare_database(svc)
    yield svc
    svc.close()


@pytest.fixture
def client(settings: Settings, services: Services) -> Iterator[TestClient]:
    app = create_app(settings, services=services)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


@pytest.fixture
def api_key(services: Services) -> str:
    return make_key(services, credits=1000).key


def with_settings(services: Services, **changes: object) -> Services:
    """The same services (database, storage…) seen through changed settings."""
    new = Settings(**{**services.settings.model_dump(), **changes})
    return dataclasses.replace(services, settings=new)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
