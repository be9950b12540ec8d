"""Admin access: off by default, token sign-in, session cookie, CSRF, origins, throttling."""

from __future__ import annotations

from fastapi.testclient import TestClient

from reel.api.app import create_app
from reel.api.console.auth import safe_next
from reel.api.console.security import (
    new_session,
    read_session,
    token_matches,
)
from reel.service import keys
from reel.service.context import Services
from tests.api.console.conftest import TOKEN, csrf_of, sign_in
from tests.conftest import auth, with_settings
from tests.factories import make_key


def test_admin_is_off_without_a_token(client: TestClient) -> None:
    for path in ("/admin", "/admin/login", "/admin/keys", "/admin/tasks/x", "/admin/live"):
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 404, path
        assert "REEL_ADMIN_TOKEN" in r.text and r.headers["content-type"].startswith("text/html")
    r = client.post("/admin/login", data={"token": "anything"}, follow_redirects=False)
    assert r.status_code == 404


def test_sign_in_sets_a_strict_httponly_session_cookie(anon: TestClient) -> None:
    r = anon.get("/admin/keys?x=1", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/admin/login?next=/admin/keys%3Fx%3D1"
    form = anon.get("/admin/login?next=/admin/keys")
    assert 'value="/admin/keys"' in form.text
    r = anon.post(
        "/admin/login",
        data={"token": TOKEN, "csrf": csrf_of(form.text), "next": "/admin/keys"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/admin/keys"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith("reel_admin="))
    attrs = {a.strip().lower() for a in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/admin"} <= attrs
    assert TOKEN not in cookie
    assert anon.get("/admin/keys").status_code == 200


def test_wrong_token_and_missing_login_csrf_are_refused(anon: TestClient) -> None:
    form = anon.get("/admin/login")
    r = anon.post("/admin/login", data={"token": "nope", "csrf": csrf_of(form.text)})
    assert r.status_code == 401 and "not right" in r.text
    r = anon.post("/admin/login", data={"token": TOKEN, "csrf": "forged"})
    assert r.status_code == 403
    anon.cookies.clear()
    r = anon.post("/admin/login", data={"token": TOKEN, "csrf": csrf_of(form.text)})
    assert r.status_code == 403  # the form token is bound to its cookie
    assert anon.get("/admin", follow_redirects=False).status_code == 303


def test_failed_sign_ins_are_throttled(anon: TestClient) -> None:
    for _ in range(5):
        form = anon.get("/admin/login")
        assert (
            anon.post("/admin/login", data={"token": "x", "csrf": csrf_of(form.text)}).status_code
            == 401
        )
    form = anon.get("/admin/login")
    r = anon.post("/admin/login", data={"token": "y", "csrf": csrf_of(form.text)})
    assert r.status_code == 429 and "Too many" in r.text
    # the right token is never throttled
    form = anon.get("/admin/login")
    r = anon.post(
        "/admin/login",
        data={"token": TOKEN, "csrf": csrf_of(form.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303


def test_user_api_keys_never_open_admin(anon: TestClient, admin_services: Services) -> None:
    key = make_key(admin_services).key
    r = anon.get("/admin", headers=auth(key), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/admin/login")
    assert anon.get("/admin/live", headers=auth(key)).status_code == 401
    form = anon.get("/admin/login")
    assert (
        anon.post("/admin/login", data={"token": key, "csrf": csrf_of(form.text)}).status_code
        == 401
    )


def test_forged_expired_and_old_token_sessions_are_refused(admin_services: Services) -> None:
    s = admin_services.settings
    cookie, session = new_session(s, now=1000.0)
    assert read_session(s, cookie, now=1001.0) == session
    assert read_session(s, cookie, now=1000.0 + s.admin_session_seconds + 1) is None
    expires, nonce, sig = cookie.split(".")
    assert read_session(s, f"{int(expires) + 999}.{nonce}.{sig}", now=1001.0) is None
    assert read_session(s, f"{expires}.{nonce}x.{sig}", now=1001.0) is None
    assert read_session(s, "garbage", now=1001.0) is None
    rotated = with_settings(admin_services, admin_token="a-new-token-of-enough-length").settings
    assert read_session(rotated, cookie, now=1001.0) is None
    off = with_settings(admin_services, admin_token=None).settings
    assert read_session(off, cookie, now=1001.0) is None


def test_token_comparison() -> None:
    from reel.config import Settings

    s = Settings(admin_token=TOKEN, secret_key="k" * 40)
    assert token_matches(s, TOKEN)
    assert (
        not token_matches(s, TOKEN[:-1])
        and not token_matches(s, "")
        and not token_matches(s, TOKEN + "x")
    )


def test_state_changes_need_csrf_and_same_origin(
    admin_client: TestClient, admin_services: Services
) -> None:
    issued = make_key(admin_services, name="victim")
    page = admin_client.get(f"/admin/keys/{issued.id}")
    csrf = csrf_of(page.text)
    url = f"/admin/keys/{issued.id}/revoke"
    assert admin_client.post(url, data={}).status_code == 403
    assert admin_client.post(url, data={"csrf": "0" * 64}).status_code == 403
    evil = {"Origin": "http://evil.example"}
    assert admin_client.post(url, data={"csrf": csrf}, headers=evil).status_code == 403
    cross = {"Sec-Fetch-Site": "cross-site"}
    assert admin_client.post(url, data={"csrf": csrf}, headers=cross).status_code == 403
    with admin_services.db.read() as session:
        assert keys.get(session, issued.id).revoked_at is None
    ok = admin_client.post(
        url, data={"csrf": csrf}, headers={"Origin": "http://testserver"}, follow_redirects=False
    )
    assert ok.status_code == 303
    assert admin_client.get("/api/sora-2/account", headers=auth(issued.key)).status_code == 401


def test_origin_of_the_public_url_is_accepted(admin_services: Services) -> None:
    behind_proxy = with_settings(admin_services, public_url="https://reel.example.com")
    app = create_app(behind_proxy.settings, services=behind_proxy)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:
        issued = make_key(behind_proxy, name="x")
        csrf = csrf_of(sign_in(c).get(f"/admin/keys/{issued.id}").text)
        url = f"/admin/keys/{issued.id}/credits"
        form = {"csrf": csrf, "credits": "1"}
        other = {"Origin": "https://elsewhere.example.com"}
        assert c.post(url, data=form, headers=other).status_code == 403
        proxied = {"Origin": "https://reel.example.com"}
        assert c.post(url, data=form, headers=proxied, follow_redirects=False).status_code == 303


def test_logout_needs_csrf_and_clears_the_cookie(admin_client: TestClient) -> None:
    csrf = csrf_of(admin_client.get("/admin").text)
    assert admin_client.post("/admin/logout", data={}).status_code == 403
    r = admin_client.post("/admin/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and 'reel_admin=""' in r.headers["set-cookie"]
    assert admin_client.get("/admin", follow_redirects=False).status_code == 303


def test_next_must_stay_inside_admin() -> None:
    assert safe_next("/admin/tasks?status=failed") == "/admin/tasks?status=failed"
    for bad in (
        None,
        "",
        "/",
        "//evil.example/admin",
        "https://evil.example/admin",
        "/admin\\x",
        "/api",
    ):
        assert safe_next(bad) == "/admin"


def test_console_can_be_turned_off(services: Services) -> None:
    off = with_settings(services, console=False)
    with TestClient(create_app(off.settings, services=off)) as c:
        assert c.get("/").status_code == 404
        assert c.get("/api/sora-2/pricing").status_code == 200


def test_sign_in_helper_works_for_other_clients(anon: TestClient) -> None:
    assert sign_in(anon).get("/admin/usage").status_code == 200
