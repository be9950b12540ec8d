"""The web console in a real browser (Debian's Chromium, headless) against a real `reel serve`."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from reel.config import Settings
from reel.service.context import build_services, prepare_database
from reel.service.usage import usage_report
from tests.e2e.browser import chromium, unavailable_reason
from tests.e2e.server import ReelServer
from tests.service.helpers import seed_history

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

pytestmark = pytest.mark.browser

TOKEN = "e2e-admin-token-0123456789abcdef"
XSS_PROMPT = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script> fox'
XSS_NAME = '<svg onload="window.__pwned=3">acme'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    reason = unavailable_reason()
    if reason is not None:
        if os.environ.get("REEL_TEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"browser tests are required here, but {reason}")
        pytest.skip(f"browser tests: {reason}")
    with chromium() as b:
        yield b


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReelServer]:
    data = tmp_path_factory.mktemp("console") / "data"
    with ReelServer(data, workers=1, REEL_ADMIN_TOKEN=TOKEN) as srv:
        yield srv


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    violations: list[str] = []
    pg.on(
        "console",
        lambda msg: violations.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    pg.on("dialog", lambda dialog: dialog.accept())
    yield pg
    context.close()
    assert violations == [], violations  # every script and style came from a static file


def use_key(page: Page, server: ReelServer, key: str) -> None:
    page.goto(f"{server.url}/")
    page.fill("#api-key", key)
    page.click("#key-use")
    page.wait_for_selector("#account:not([hidden])")


def sign_in(page: Page, server: ReelServer, next_path: str = "/admin") -> None:
    page.goto(f"{server.url}{next_path}")
    assert page.url.startswith(f"{server.url}/admin/login")
    page.fill("#token", "not-the-token")
    page.click("button[type=submit]")
    assert "not right" in (page.text_content(".banner.bad") or "")
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}{next_path}")


def api(server: ReelServer, key: str, path: str) -> httpx.Response:
    return httpx.get(f"{server.url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=10)


def test_playground_submits_and_plays_the_video(page: Page, server: ReelServer) -> None:
    key = str(server.create_key(credits=50, name="player")["key"])
    use_key(page, server, key)
    assert page.text_content("#acc-credits") == "50"
    assert page.evaluate("() => window.sessionStorage.getItem('reel.apiKey')") == key
    assert page.evaluate("() => window.localStorage.getItem('reel.apiKey')") is None

    pricing = httpx.get(f"{server.url}/api/sora-2/pricing", timeout=10).json()
    table = {t["modelTier"]: t["credits"] for t in pricing["tiers"]}
    page.wait_for_function("() => document.getElementById('price').textContent.startsWith('Costs')")
    assert (
        page.text_content("#price")
        == f"Costs {table['sora2']['10']} credits · you have 50, 46 after this"
    )
    page.check("input[name=duration][value='15']")
    page.select_option("#tier", "sora2-pro-standard")
    assert "Costs 100 credits" in (page.text_content("#price") or "")
    assert "not enough" in (page.text_content("#price") or "")
    page.select_option("#tier", "sora2")
    page.check("input[name=duration][value='10']")

    page.check("input[name=mode][value='imageToVideo']")
    assert page.is_visible("#image-url")
    page.check("input[name=mode][value='textToVideo']")
    assert not page.is_visible("#image-url")

    page.fill("#prompt", "A lighthouse in a storm")
    curl = page.text_content("#curl") or ""
    assert '"prompt":"A lighthouse in a storm"' in curl and "$REEL_API_KEY" in curl
    assert key not in curl
    page.click("#gen-submit")
    page.wait_for_function("() => document.getElementById('video').currentTime > 0", timeout=90_000)
    assert page.evaluate("() => document.getElementById('video').readyState") >= 2
    # The preview autoplays muted; pressing the player turns the sound on.
    assert page.evaluate("() => document.getElementById('video').muted") is True
    page.click("#video")
    assert page.evaluate("() => document.getElementById('video').muted") is False
    assert page.text_content("#v-status") == "completed"
    href = page.get_attribute("#v-download", "href") or ""
    assert href.startswith(f"{server.url}/media/videos/") and ".mp4?" in href
    thumb = page.get_attribute("#v-thumb", "src") or ""
    assert httpx.get(thumb, timeout=10).headers["content-type"] == "image/webp"
    page.wait_for_function("() => document.getElementById('acc-credits').textContent === '46'")
    page.wait_for_selector("#history .hist-item")
    item = page.locator("#history .hist-item").first
    assert item.locator(".hist-prompt").text_content() == "A lighthouse in a storm"
    assert item.locator(".badge").text_content() == "completed"


def test_playground_refuses_a_bad_key_and_shows_failures_with_refunds(
    page: Page, tmp_path: Path
) -> None:
    with ReelServer(tmp_path / "data", workers=1, REEL_SANDBOX_FAIL_RATE="1") as srv:
        page.goto(f"{srv.url}/")
        page.fill("#api-key", "sk-reel-not-a-real-key-at-all-000000000")
        page.click("#key-use")
        page.wait_for_selector("#key-error:not([hidden])")
        assert "not accepted" in (page.text_content("#key-error") or "")
        assert page.is_disabled("#gen-submit")
        key = str(srv.create_key(credits=8, name="unlucky")["key"])
        use_key(page, srv, key)
        page.fill("#prompt", "doomed")
        page.click("#gen-submit")
        page.wait_for_selector("#v-failed:not([hidden])", timeout=60_000)
        assert "4 credits were refunded" in (page.text_content("#v-refund") or "")
        page.wait_for_selector("#history .hist-error")
        assert "4 credits refunded" in (
            page.locator("#history .hist-error").first.text_content() or ""
        )
        page.wait_for_function("() => document.getElementById('acc-credits').textContent === '8'")


def test_admin_creates_tops_up_and_revokes_a_key(page: Page, server: ReelServer) -> None:
    sign_in(page, server, "/admin/keys")
    page.fill("#key-name", "partner")
    page.fill("#key-credits", "12")
    page.click("text=Create key")
    secret = page.text_content("#secret") or ""
    assert secret.startswith("sk-reel-")
    assert api(server, secret, "/api/sora-2/account").json()["credits"] == 12
    page.goto(f"{server.url}/admin/keys")
    assert secret not in page.content()
    page.click("a:text-is('partner')")
    page.fill("#credits", "30")
    page.fill("#note", "welcome")
    page.click("text=Add credits")
    assert page.text_content("#balance") == "42"
    assert api(server, secret, "/api/sora-2/account").json()["credits"] == 42
    page.click("text=Revoke key")  # the confirm dialog is accepted
    page.wait_for_selector("text=Key revoked")
    refused = api(server, secret, "/api/sora-2/account")
    assert refused.status_code == 401 and refused.json()["errorCode"] == "LOGIN_REQUIRED"


def test_usage_chart_renders_with_data(page: Page, server: ReelServer) -> None:
    services = build_services(Settings(data_dir=server.data_dir))
    try:
        prepare_database(services)
        from reel.service import admin

        key = admin.issue_key(services, name="history", credits=100_000).id
        seed_history(services, [key], days=5, until=time.time())
        with services.db.read() as session:
            report = usage_report(session, days=14)
    finally:
        services.close()
    sign_in(page, server, "/admin/usage")
    bars = page.locator("#videos-chart rect.bar")
    assert bars.count() > 0
    titles = [bars.nth(i).locator("title").text_content() or "" for i in range(bars.count())]
    assert sum(int(t.rsplit(": ", 1)[1].split()[0]) for t in titles) == report.total_videos
    box = page.locator("#videos-chart").bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert page.locator("#credits-chart rect.bar").count() > 0
    assert page.locator("#timings-chart rect.bar").count() >= 2  # median and p95
    assert page.text_content("#total-videos") == str(report.total_videos)


def test_user_text_stays_text_everywhere_including_live_updates(page: Page, tmp_path: Path) -> None:
    # No workers: tasks stay queued, so the overview's live table shows them.
    with ReelServer(tmp_path / "data", workers=0, REEL_ADMIN_TOKEN=TOKEN) as srv:
        created = srv.create_key(credits=20, name=XSS_NAME)
        key = str(created["key"])
        use_key(page, srv, key)
        assert page.text_content("#acc-name") == XSS_NAME
        page.fill("#prompt", XSS_PROMPT)
        page.click("#gen-submit")
        page.wait_for_selector("#history .hist-item")
        assert page.text_content("#v-prompt") == XSS_PROMPT
        assert page.locator("#history .hist-prompt").first.text_content() == XSS_PROMPT

        sign_in(page, srv, "/admin")
        page.wait_for_function(
            "() => document.getElementById('live-at').textContent.includes('updated')",
            timeout=15_000,
        )
        row = page.locator("#live-active tbody tr").first
        assert row.locator("td.clip").text_content() == XSS_PROMPT
        assert row.locator("td").nth(1).text_content() == XSS_NAME
        for path in ("/admin/tasks", "/admin/keys", f"/admin/keys/{created['id']}"):
            page.goto(f"{srv.url}{path}")
            assert XSS_NAME in (page.text_content("main") or ""), path
        page.goto(f"{srv.url}/admin/tasks")
        page.click("td.clip a")
        assert page.text_content(".prompt-text") == XSS_PROMPT
        page.click("text=Cancel task")
        page.wait_for_selector("text=Cancel requested")
        assert page.text_content("h1 .badge") == "canceled"
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("img[src=x], main svg[onload]").count() == 0
        assert api(srv, key, "/api/sora-2/account").json()["credits"] == 20  # refunded
