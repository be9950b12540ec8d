"""check-status, the polling hot path: one SQL statement per poll, immediate revocation, and the
same error order as every other route (401, then 429, then 400, then 404)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import event

from reel.service import keys
from reel.service.context import Services
from tests.conftest import auth, with_settings
from tests.factories import make_key

STATUS = "/api/sora-2/check-status"
T2V = {"prompt": "a fox", "mode": "textToVideo"}


@contextmanager
def statements(services: Services) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]).split()[0].upper())

    engine = services.db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_a_poll_is_one_select(client: TestClient, services: Services) -> None:
    key = make_key(services).key
    first = client.post("/api/sora-2/generate", json=T2V, headers=auth(key)).json()["taskId"]
    second = client.post("/api/sora-2/generate", json=T2V, headers=auth(key)).json()["taskId"]
    client.post(STATUS, json={"taskId": second}, headers=auth(key))  # pool warm

    with statements(services) as seen:
        r = client.post(STATUS, json={"taskId": second}, headers=auth(key))

    assert r.status_code == 200, r.text
    assert [s for s in seen if s not in ("BEGIN", "ROLLBACK", "COMMIT")] == ["SELECT"]
    assert r.json()["queuePosition"] == 2  # counted in the same statement
    assert r.json()["taskId"] == second and r.headers["RateLimit-Limit"]
    assert (
        client.post(STATUS, json={"taskId": first}, headers=auth(key)).json()["queuePosition"] == 1
    )


def test_revocation_is_immediate_and_other_keys_tasks_are_not_found(
    client: TestClient, services: Services
) -> None:
    issued, other = make_key(services), make_key(services, name="other")
    task = client.post("/api/sora-2/generate", json=T2V, headers=auth(issued.key)).json()["taskId"]
    assert client.post(STATUS, json={"taskId": task}, headers=auth(issued.key)).status_code == 200
    r = client.post(STATUS, json={"taskId": task}, headers=auth(other.key))
    assert r.status_code == 404 and r.json()["errorCode"] == "TASK_NOT_FOUND"

    with services.db.write() as session:
        keys.revoke(session, issued.id)

    r = client.post(STATUS, json={"taskId": task}, headers=auth(issued.key))
    assert r.status_code == 401 and r.json()["errorCode"] == "LOGIN_REQUIRED"


def test_error_order_is_401_then_429_then_400(services: Services) -> None:
    from reel.api.app import create_app

    limited = with_settings(services, rate_limit_status="2/minute")
    key = make_key(limited).key
    with TestClient(create_app(limited.settings, services=limited)) as c:
        assert c.post(STATUS, content=b"{not json").status_code == 401
        assert c.post(STATUS, json={}, headers=auth("sk-reel-" + "A" * 43)).status_code == 401
        r = c.post(STATUS, json={}, headers=auth(key))
        assert r.status_code == 400 and r.json()["errorCode"] == "TASK_ID_REQUIRED"
        assert c.post(STATUS, json={"taskId": "task_none"}, headers=auth(key)).status_code == 404
        r = c.post(STATUS, json={}, headers=auth(key))
        assert r.status_code == 429 and r.headers["Retry-After"]
