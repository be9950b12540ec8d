"""Console pages: rendered, escaped, free of inline script, wired to the service layer."""

from __future__ import annotations

import re
import time
from html.parser import HTMLParser

from fastapi.testclient import TestClient

from reel.service import admin, keys, pricing
from reel.service.context import Services
from reel.types import TaskStatus, Tier
from tests.api.console.conftest import csrf_of
from tests.conftest import auth
from tests.factories import make_key
from tests.service.helpers import finish, seed_history, submit

XSS = '<script>alert(1)</script><img src=x onerror="alert(2)">'


class _Audit(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {k for k, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        self.problems += [f"{tag}[{k}]" for k in names if k.startswith("on") or k == "style"]
        for k, v in attrs:
            if k in ("href", "src", "action") and v and v.strip().lower().startswith("javascript:"):
                self.problems.append(f"{tag}[{k}=javascript:]")


def audit(html: str) -> list[str]:
    parser = _Audit()
    parser.feed(html)
    return parser.problems


def assert_safe_page(r_text: str, headers: dict[str, str] | object) -> None:
    csp = headers["content-security-policy"]  # type: ignore[index]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert audit(r_text) == []


def test_playground_page(client: TestClient) -> None:
    r = client.get("/")
    assert r.status_code == 200
    assert_safe_page(r.text, r.headers)
    assert '<script src="/static/console/playground.js' in r.text
    for tier in Tier:
        assert tier.value in r.text
    assert "sandbox engine" in r.text  # the packaged models file serves every tier with it
    assert client.get("/static/console/playground.js").status_code == 200
    assert client.get("/static/console/console.css").headers["content-type"].startswith("text/css")


def test_pricing_endpoint_is_the_pricing_table(client: TestClient) -> None:
    body = client.get("/api/sora-2/pricing").json()  # no key needed
    assert body["durations"] == ["10", "15"] and body["defaultDuration"] == "10"
    table = {(t["modelTier"], int(d)): c for t in body["tiers"] for d, c in t["credits"].items()}
    assert table == dict(pricing.CREDITS)
    high = next(t for t in body["tiers"] if t["modelTier"] == "sora2-pro-high")
    assert high["sizes"] == {"portrait": "1080x1920", "landscape": "1920x1080"}
    assert high["engine"] == "sandbox" and high["sandbox"] is True
    spec = client.get("/openapi.json").json()["paths"]["/api/sora-2/pricing"]["get"]
    assert spec["security"] == []


def test_status_extensions_thumbnail_prompt_retry_of(
    client: TestClient, services: Services, api_key: str
) -> None:
    with services.db.read() as session:
        key = keys.authenticate(session, api_key)
    tid = submit(services, key.id, prompt=XSS)
    finish(services, tid, TaskStatus.FAILED, at=time.time())
    retried = admin.retry(services, tid)
    finish(services, retried.id, TaskStatus.COMPLETED, at=time.time(), seconds=1.0)
    st = client.post("/api/sora-2/check-status", json={"taskId": retried.id}, headers=auth(api_key))
    body = st.json()
    assert body["retryOf"] == tid and "prompt" not in body
    assert body["thumbnailUrl"].split("?")[0].endswith(f"/media/videos/{retried.id}-a1.thumb.webp")
    listed = client.get("/api/sora-2/tasks", headers=auth(api_key)).json()["data"]
    assert [t["prompt"] for t in listed] == [XSS, XSS]
    assert "thumbnailUrl" not in listed[1]  # the failed original


def test_every_admin_page_renders_safely_and_escapes_user_text(
    admin_client: TestClient, admin_services: Services
) -> None:
    issued = make_key(admin_services, name=XSS, credits=500)
    tid = submit(admin_services, issued.id, prompt=XSS)
    failed = submit(admin_services, issued.id, prompt="fails")
    finish(admin_services, failed, TaskStatus.FAILED, at=time.time())
    with admin_services.db.write() as session:
        from reel.db.models import Task

        row = session.get(Task, failed)
        assert row is not None
        row.error_message = XSS
    pages = [
        "/admin",
        "/admin/keys",
        f"/admin/keys/{issued.id}",
        "/admin/tasks",
        f"/admin/tasks?key={issued.id}&status=queued",
        f"/admin/tasks/{tid}",
        f"/admin/tasks/{failed}",
        "/admin/usage",
        "/admin/usage?days=90",
        "/admin/workers",
    ]
    for path in pages:
        r = admin_client.get(path)
        assert r.status_code == 200, path
        assert_safe_page(r.text, r.headers)
        assert r.headers["cache-control"] == "no-store", path
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in admin_client.get("/admin/keys").text
    assert "&lt;script&gt;" in admin_client.get(f"/admin/tasks/{failed}").text  # the error
    live = admin_client.get("/admin/live").json()
    assert live["active"][0]["prompt"] == XSS and live["active"][0]["keyName"] == XSS


def test_create_key_shows_the_secret_once(admin_client: TestClient) -> None:
    csrf = csrf_of(admin_client.get("/admin/keys").text)
    r = admin_client.post("/admin/keys", data={"csrf": csrf, "name": "acme", "credits": "42"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    secret = re.search(r'<code id="secret"[^>]*>(sk-reel-[^<]+)</code>', r.text)
    assert secret is not None
    assert (
        admin_client.get("/api/sora-2/account", headers=auth(secret.group(1))).json()["credits"]
        == 42
    )
    hook = re.search(r'<code id="webhook-secret"[^>]*>(whsec_[^<]+)</code>', r.text)
    assert hook is not None
    for path in ("/admin/keys", "/admin", "/admin/tasks"):
        page = admin_client.get(path).text
        assert secret.group(1) not in page and hook.group(1) not in page
    bad = admin_client.post("/admin/keys", data={"csrf": csrf, "name": " ", "credits": "1"})
    assert bad.status_code == 400 and "name must be" in bad.text
    bad = admin_client.post("/admin/keys", data={"csrf": csrf, "name": "x", "credits": "lots"})
    assert bad.status_code == 400 and "whole number" in bad.text


def test_top_up_and_revoke(admin_client: TestClient, admin_services: Services) -> None:
    issued = make_key(admin_services, name="acme", credits=5)
    csrf = csrf_of(admin_client.get(f"/admin/keys/{issued.id}").text)
    r = admin_client.post(
        f"/admin/keys/{issued.id}/credits", data={"csrf": csrf, "credits": "10", "note": "march"}
    )
    assert r.status_code == 200 and "Credits added." in r.text and ">15<" in r.text
    assert "march" in r.text
    r = admin_client.post(f"/admin/keys/{issued.id}/credits", data={"csrf": csrf, "credits": "-3"})
    assert r.status_code == 400 and "positive" in r.text
    r = admin_client.post(f"/admin/keys/{issued.id}/revoke", data={"csrf": csrf})
    assert r.status_code == 200 and "Key revoked" in r.text
    assert admin_client.get("/api/sora-2/account", headers=auth(issued.key)).status_code == 401
    assert admin_client.get("/admin/keys/key_missing").status_code == 404


def test_cancel_and_retry_from_the_task_page(
    admin_client: TestClient, admin_services: Services
) -> None:
    key = make_key(admin_services, name="acme", credits=100).id
    queued = submit(admin_services, key)
    csrf = csrf_of(admin_client.get(f"/admin/tasks/{queued}").text)
    r = admin_client.post(f"/admin/tasks/{queued}/cancel", data={"csrf": csrf})
    assert r.status_code == 200 and "Cancel requested" in r.text and "st-canceled" in r.text
    r = admin_client.post(f"/admin/tasks/{queued}/cancel", data={"csrf": csrf})
    assert r.status_code == 200  # canceling a canceled task is a no-op, as in the API
    r = admin_client.post(f"/admin/tasks/{queued}/retry", data={"csrf": csrf})
    assert r.status_code == 409 and "only a failed task" in r.text

    failed = submit(admin_services, key)
    finish(admin_services, failed, TaskStatus.FAILED, at=time.time())
    r = admin_client.post(
        f"/admin/tasks/{failed}/retry", data={"csrf": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    new_id = r.headers["location"].split("/")[-1].split("?")[0]
    page = admin_client.get(r.headers["location"]).text
    assert "Retry accepted" in page and f"/admin/tasks/{failed}" in page
    assert new_id != failed
    original = admin_client.get(f"/admin/tasks/{failed}").text
    assert f"/admin/tasks/{new_id}" in original and "already retried" in original
    with admin_services.db.read() as session:
        assert keys.get(session, key).balance == 96  # 100 − 4 (the retry's own charge)


def test_task_filters_and_pagination(admin_client: TestClient, admin_services: Services) -> None:
    key = make_key(admin_services, credits=10_000).id
    for _ in range(3):
        submit(admin_services, key)
    r = admin_client.get("/admin/tasks?status=queued&since=2000-01-01&until=2999-01-01")
    assert r.status_code == 200 and ">3 tasks<" in r.text
    r = admin_client.get("/admin/tasks?status=bogus&since=yesterday")
    assert "Unknown status" in r.text and "Dates must look like" in r.text
    assert ">3 tasks<" in r.text
    assert ">0 tasks<" in admin_client.get("/admin/tasks?status=failed").text
    assert "No tasks match" in admin_client.get("/admin/tasks?engine=wan").text


def test_usage_page_draws_charts_from_the_report(
    admin_client: TestClient, admin_services: Services
) -> None:
    assert "No data yet" in admin_client.get("/admin/usage").text
    key = make_key(admin_services, credits=100_000).id
    made = seed_history(admin_services, [key], days=6, until=time.time())
    r = admin_client.get("/admin/usage?days=14")
    videos = re.search(r'<svg id="videos-chart".*?</svg>', r.text, re.S)
    assert videos is not None
    bars = re.findall(r"<title>(\d{4}-\d\d-\d\d) · ([\w-]+): (\d+) videos</title>", videos.group(0))
    with admin_services.db.read() as session:
        from reel.service.usage import usage_report

        report = usage_report(session, days=14)
    assert sum(int(n) for *_, n in bars) == report.total_videos > 0
    assert report.outcomes.completed + report.outcomes.failed == made
    assert 'id="credits-chart"' in r.text and 'id="timings-chart"' in r.text
    assert f'id="total-videos">{report.total_videos}<' in r.text
