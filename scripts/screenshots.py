"""Regenerate docs/screenshots/: every console page at desktop and phone width.

Runs a real `reel serve` on a loopback port with a fresh data dir, fills it with two weeks of
history plus a few real sandbox renders, and photographs the pages with Debian's Chromium.

    pip install -e '.[test]' && apt-get install -y chromium   # once
    python scripts/screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page  # noqa: E402
from tests.e2e.browser import chromium, unavailable_reason  # noqa: E402
from tests.e2e.server import ReelServer  # noqa: E402
from tests.service.helpers import seed_history  # noqa: E402

from reel.api.app import prepare_database  # noqa: E402
from reel.config import Settings  # noqa: E402
from reel.service import admin  # noqa: E402
from reel.service.context import build_services  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
TOKEN = "screenshot-admin-token-0123456789"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def seed(data_dir: Path) -> str:
    """Keys and history; returns the playground user's API key."""
    services = build_services(Settings(data_dir=data_dir))
    try:
        prepare_database(services)
        user = admin.issue_key(services, name="acme-studio", credits=5000)
        other = admin.issue_key(services, name="mobile-app", credits=5000)
        admin.issue_key(services, name="trial", credits=20)
        mobile = admin.issue_key(services, name="agency-north", credits=5000)
        seed_history(services, [other.id, mobile.id], days=13, until=time.time())
        old = admin.issue_key(services, name="old-integration", credits=0)
        admin.revoke_key(services, old.id)
        return user.key
    finally:
        services.close()


def generate(page: Page, prompt: str, *, tier: str = "sora2") -> None:
    before = page.text_content("#v-id") or ""
    page.fill("#prompt", prompt)
    page.select_option("#tier", tier)
    page.click("#gen-submit")
    page.wait_for_function(
        "(before) => document.getElementById('v-id').textContent !== before"
        " && document.getElementById('v-done').hidden === false"
        " && document.getElementById('video').readyState >= 2",
        arg=before,
        timeout=240_000,
    )


def shoot(page: Page, name: str, size: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(400)
    path = OUT / f"{name}-{size}.png"
    page.screenshot(path=str(path), full_page=True)
    sys.stdout.write(f"wrote {path.relative_to(ROOT)}\n")


def main() -> int:
    reason = unavailable_reason()
    if reason:
        sys.stderr.write(f"cannot take screenshots: {reason}\n")
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="reel-shots-") as tmp:
        data = Path(tmp) / "data"
        key = seed(data)
        env = {
            "REEL_ADMIN_TOKEN": TOKEN,
            "REEL_SANDBOX_PROFILE": "full",
            "REEL_SANDBOX_FPS": "8",
            "REEL_SANDBOX_DELAY": "0.5",
        }
        with ReelServer(data, workers=1, **env) as server, chromium() as browser:
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(f"{server.url}/")
            page.fill("#api-key", key)
            page.click("#key-use")
            page.wait_for_selector("#account:not([hidden])")
            generate(page, "A paper boat drifting down a rainy street, soft morning light")
            generate(page, "A red fox trotting through fresh snow", tier="sora2-pro-standard")
            page.fill("#prompt", "A lighthouse in a storm, waves crashing against the rocks")
            page.evaluate("document.activeElement.blur()")
            task_id = page.text_content("#v-id") or ""
            for size, (w, h) in SIZES.items():
                page.set_viewport_size({"width": w, "height": h})
                shoot(page, "playground", size)

            admin_page = ctx.new_page()
            admin_page.goto(f"{server.url}/admin/login")
            for size, (w, h) in SIZES.items():
                admin_page.set_viewport_size({"width": w, "height": h})
                shoot(admin_page, "admin-login", size)
            admin_page.fill("#token", TOKEN)
            admin_page.click("button[type=submit]")
            admin_page.wait_for_url(f"{server.url}/admin")
            pages = {
                "admin-overview": "/admin",
                "admin-tasks": "/admin/tasks",
                "admin-task": f"/admin/tasks/{task_id}",
                "admin-keys": "/admin/keys",
                "admin-usage": "/admin/usage",
                "admin-workers": "/admin/workers",
            }
            for name, path in pages.items():
                admin_page.goto(f"{server.url}{path}")
                for size, (w, h) in SIZES.items():
                    admin_page.set_viewport_size({"width": w, "height": h})
                    shoot(admin_page, name, size)
            width, height = SIZES["desktop"]
            admin_page.set_viewport_size({"width": width, "height": height})
            admin_page.goto(f"{server.url}/admin/keys")
            admin_page.click("a:text('acme-studio')")
            for size, (w, h) in SIZES.items():
                admin_page.set_viewport_size({"width": w, "height": h})
                shoot(admin_page, "admin-key", size)
            ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
