"""Shared fixtures: settings on a temp data dir, services, an in-process app, key factories."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reel.api.app import create_app, prepare_database
from reel.config import Settings
from reel.service.context import Services, build_services
from tests.factories import make_key


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        sandbox_profile="tiny",
        sandbox_delay=0.0,
        lease_seconds=5,
        heartbeat_seconds=1,
        image_fetch_allow_hosts=("127.0.0.1",),
    )


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
