"""/docs and /redoc in a real browser with every other origin unreachable: the API reference
renders from the server's own files, under its Content-Security-Policy, with no violation."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.browser import chromium, unavailable_reason
from tests.e2e.server import ReelServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Route

pytestmark = pytest.mark.browser


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
    with ReelServer(tmp_path_factory.mktemp("docs") / "data", workers=0) as srv:
        yield srv


@pytest.mark.parametrize(
    ("path", "rendered"),
    [("/docs", ".swagger-ui .info .title"), ("/redoc", "[role=navigation], .api-content h1")],
)
def test_api_reference_renders_offline_without_csp_violations(
    browser: Browser, server: ReelServer, path: str, rendered: str, tmp_path: Path
) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    elsewhere: list[str] = []

    def same_origin_only(route: Route) -> None:
        if route.request.url.startswith(server.url):
            route.continue_()
        else:  # as if offline: nothing but this server answers
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", same_origin_only)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    try:
        page.goto(server.url + path)
        page.wait_for_selector(rendered, timeout=20_000)
        assert "Reel" in page.inner_text("body")
        page.screenshot(path=str(tmp_path / "docs.png"))
    finally:
        context.close()
    assert elsewhere == []
    # ReDoc always tries to show Redocly's logo from its CDN; the policy refuses it (no request
    # leaves) and ReDoc hides the image. Nothing else may be refused or fail.
    refused_logo = "https://cdn.redoc.ly/redoc/logo-mini.svg"
    assert [p for p in problems if refused_logo not in p] == [], problems
