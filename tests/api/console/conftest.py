"""An app with the admin console on, and a signed-in client."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reel.api.app import create_app
from reel.service.context import Services
from tests.conftest import with_settings

TOKEN = "test-admin-token-with-enough-entropy"


@pytest.fixture
def admin_services(services: Services) -> Services:
    return with_settings(services, admin_token=TOKEN, admin_login_rate="5/minute")


@pytest.fixture
def anon(admin_services: Services) -> Iterator[TestClient]:
    app = create_app(admin_services.settings, services=admin_services)
    with TestClient(app, base_url="http://testserver") as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, token: str = TOKEN) -> TestClient:
    form = client.get("/admin/login")
    r = client.post(
        "/admin/login",
        data={"token": token, "csrf": csrf_of(form.text), "next": "/admin"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    return client


@pytest.fixture
def admin_client(anon: TestClient) -> TestClient:
    return sign_in(anon)
