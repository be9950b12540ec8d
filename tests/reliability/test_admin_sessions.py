"""Admin sign-in and sessions: a correct token always signs in, failures are throttled per
address across API processes; signing out (here or everywhere) ends the session on the
server, and a new admin token ends every session."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from reel.api.app import create_app
from reel.config import Settings
from reel.service.context import Services
from tests import services as real
from tests.api.console.conftest import TOKEN, csrf_of, sign_in
from tests.conftest import with_settings

RATE = "3/minute"


def console(services: Services) -> TestClient:
    return TestClient(
        create_app(services.settings, services=services), base_url="http://testserver"
    )


def attempt(client: TestClient, token: str) -> int:
    form = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"token": token, "csrf": csrf_of(form.text), "next": "/admin"},
        follow_redirects=False,
    ).status_code


@pytest.fixture
def admin(services: Services) -> Services:
    return with_settings(services, admin_token=TOKEN, admin_login_rate=RATE)


def test_the_right_token_signs_in_from_a_throttled_address(admin: Services) -> None:
    # Everyone behind one proxy shares its address: others' failures must not lock out
    # whoever holds the token.
    with console(admin) as client:
        assert [attempt(client, "wrong-token-guess") for _ in range(4)] == [401, 401, 401, 429]
        assert attempt(client, "wrong-token-guess") == 429
        assert attempt(client, TOKEN) == 303
        assert client.get("/admin", follow_redirects=False).status_code == 200


@pytest.mark.services
def test_failures_are_counted_across_api_processes(admin: Services) -> None:
    prefix = f"reeltest{secrets.token_hex(4)}"
    shared = with_settings(admin, redis_url=real.check_redis(), redis_prefix=prefix)
    try:
        with console(shared) as first, console(shared) as second:
            assert [attempt(first, "nope-nope-nope") for _ in range(3)] == [401] * 3
            assert attempt(second, "nope-nope-nope") == 429  # another process, same store
            assert attempt(second, TOKEN) == 303
    finally:
        real.delete_redis_prefix(prefix)


def test_a_short_admin_token_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="REEL_ADMIN_TOKEN must be at least 16"):
        Settings(admin_token="letmein")  # type: ignore[arg-type]


@pytest.fixture
def two_browsers(admin: Services) -> Iterator[tuple[TestClient, TestClient]]:
    with console(admin) as a, console(admin) as b:
        yield sign_in(a), sign_in(b)


def _sign_out(client: TestClient, path: str) -> None:
    csrf = csrf_of(client.get("/admin").text)
    r = client.post(path, data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login"


def _signed_in(client: TestClient, cookie: str | None = None) -> bool:
    if cookie:
        client.cookies.set("reel_admin", cookie)
    return client.get("/admin", follow_redirects=False).status_code == 200


def test_a_copied_cookie_dies_with_sign_out(
    two_browsers: tuple[TestClient, TestClient], admin: Services
) -> None:
    a, b = two_browsers
    copied = a.cookies["reel_admin"]
    _sign_out(a, "/admin/logout")
    with console(admin) as thief:
        assert not _signed_in(thief, copied)
    assert _signed_in(b)  # other sessions go on


def test_sign_out_everywhere_ends_every_session(
    two_browsers: tuple[TestClient, TestClient], admin: Services
) -> None:
    a, b = two_browsers
    copied = b.cookies["reel_admin"]
    _sign_out(a, "/admin/logout-everywhere")
    assert not _signed_in(b)
    with console(admin) as thief:
        assert not _signed_in(thief, copied)
    with console(admin) as fresh:
        assert _signed_in(sign_in(fresh))  # signing in again works


def test_a_new_admin_token_ends_every_session(admin: Services) -> None:
    with console(admin) as a:
        cookie = sign_in(a).cookies["reel_admin"]
    rotated = with_settings(admin, admin_token="another-token-0123456789")
    with console(rotated) as b:
        assert not _signed_in(b, cookie)
        sign_in(b, "another-token-0123456789")
    with console(admin) as back:  # the old token again: its sessions stay ended
        assert not _signed_in(back, cookie)
