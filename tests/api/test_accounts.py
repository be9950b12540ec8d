"""Accounts: keys of one account share balance and tasks, a revoked key leaves the others
working, strangers get 404; quotas refuse with nothing charged; the usage statement equals the
ledger; operators' actions are audited."""

from __future__ import annotations

import csv
import io
import json
import time

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from reel.db.models import LedgerEntry, Task
from reel.service import accounts, admin, audit, pricing
from reel.service.context import Services
from reel.types import Tier
from tests.conftest import auth

GEN = "/api/sora-2/generate"
STATUS = "/api/sora-2/check-status"
T2V = {"prompt": "a red kite over a hill", "mode": "textToVideo"}
PRICE = pricing.price(Tier.SORA2, pricing.DEFAULT_DURATION)


def _create(client: TestClient, key: str, surface: str = "seed") -> object:
    if surface == "openai":
        return client.post("/v1/videos", json={"prompt": "kite"}, headers=auth(key))
    return client.post(GEN, json=T2V, headers=auth(key))


def test_keys_of_one_account_share_balance_and_tasks(
    client: TestClient, services: Services
) -> None:
    first = admin.issue_key(services, name="team", credits=10 * PRICE)
    second = admin.issue_key(services, name="team-ci", credits=0, account_id=first.account)
    stranger = admin.issue_key(services, name="other", credits=10 * PRICE)
    assert first.account == second.account != stranger.account

    task_id = _create(client, first.key).json()["taskId"]  # type: ignore[attr-defined]
    seen = client.post(STATUS, json={"taskId": task_id}, headers=auth(second.key))
    assert seen.status_code == 200 and seen.json()["taskId"] == task_id
    listed = client.get("/api/sora-2/tasks", headers=auth(second.key)).json()
    assert task_id in [t["taskId"] for t in listed["data"]]

    for key in (first.key, second.key):
        body = client.get("/api/sora-2/account", headers=auth(key)).json()
        assert body["accountId"] == first.account and body["credits"] == 9 * PRICE
        assert body["usage"]["tasks"] == 1

    other = client.post(STATUS, json={"taskId": task_id}, headers=auth(stranger.key))
    assert other.status_code == 404 and other.json()["errorCode"] == "TASK_NOT_FOUND"
    assert client.get("/api/sora-2/tasks", headers=auth(stranger.key)).json()["data"] == []

    admin.revoke_key(services, first.id)
    assert client.post(STATUS, json={"taskId": task_id}, headers=auth(first.key)).status_code == 401
    kept = client.post(STATUS, json={"taskId": task_id}, headers=auth(second.key))
    assert kept.status_code == 200  # the history stays with the account
    assert _create(client, second.key).status_code == 200  # type: ignore[attr-defined]
    body = client.get("/api/sora-2/account", headers=auth(second.key)).json()
    assert body["credits"] == 8 * PRICE and body["usage"]["tasks"] == 2

    third = admin.issue_key(services, name="team-3", credits=0, account_id=first.account)
    video_id = _create(client, third.key, "openai").json()["id"]  # type: ignore[attr-defined]
    assert client.get(f"/v1/videos/{video_id}", headers=auth(second.key)).status_code == 200
    assert client.get(f"/v1/videos/{video_id}", headers=auth(stranger.key)).status_code == 404


def test_daily_cap_refuses_without_charge_and_refunds_do_not_count(
    client: TestClient, services: Services
) -> None:
    issued = admin.issue_key(services, name="capped", credits=100 * PRICE)
    admin.set_limits(services, issued.account, {"daily_credits": 2 * PRICE})
    first = _create(client, issued.key).json()["taskId"]  # type: ignore[attr-defined]
    assert _create(client, issued.key).status_code == 200  # type: ignore[attr-defined]

    refused = _create(client, issued.key)
    assert refused.status_code == 429  # type: ignore[attr-defined]
    assert refused.json()["errorCode"] == "QUOTA_EXCEEDED"  # type: ignore[attr-defined]
    retry_after = int(refused.headers["Retry-After"])  # type: ignore[attr-defined]
    span = accounts.periods(time.time())
    assert 0 < retry_after <= span.next_day - span.day_start
    openai = _create(client, issued.key, "openai")
    assert openai.status_code == 429  # type: ignore[attr-defined]
    assert openai.json()["error"]["code"] == "insufficient_quota"  # type: ignore[attr-defined]
    with services.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Task)) == 2
        balance = accounts.get(session, issued.account).balance
    assert balance == 98 * PRICE  # nothing charged for the refusals

    client.post("/api/sora-2/cancel", json={"taskId": first}, headers=auth(issued.key))
    assert _create(client, issued.key).status_code == 200  # type: ignore[attr-defined]
    quotas = client.get("/api/sora-2/account", headers=auth(issued.key)).json()["quotas"]
    assert quotas["dailyCredits"] == {
        "limit": 2 * PRICE,
        "used": 2 * PRICE,
        "resetSeconds": quotas["dailyCredits"]["resetSeconds"],
    }
    assert quotas["dailyVideos"]["limit"] is None and quotas["dailyVideos"]["used"] == 2


def test_daily_video_cap_and_account_rate_limit(client: TestClient, services: Services) -> None:
    issued = admin.issue_key(services, name="videos", credits=100 * PRICE)
    other = admin.issue_key(services, name="videos-2", credits=0, account_id=issued.account)
    admin.set_limits(services, issued.account, {"daily_videos": 1, "creates_per_hour": 2})
    assert _create(client, issued.key).status_code == 200  # type: ignore[attr-defined]
    refused = _create(client, other.key)
    assert refused.json()["errorCode"] == "QUOTA_EXCEEDED"  # type: ignore[attr-defined]
    admin.set_limits(services, issued.account, {"daily_videos": None})
    limited = _create(client, other.key)  # third creation this hour across both keys
    assert limited.status_code == 429  # type: ignore[attr-defined]
    assert limited.json()["errorCode"] == "API_KEY_RATE_LIMIT_EXCEEDED"  # type: ignore[attr-defined]


def test_usage_export_rows_equal_the_ledger(client: TestClient, services: Services) -> None:
    issued = admin.issue_key(services, name="billing", credits=10 * PRICE)
    stranger = admin.issue_key(services, name="x", credits=10 * PRICE)
    ids = [_create(client, issued.key).json()["taskId"] for _ in range(3)]  # type: ignore[attr-defined]
    _create(client, stranger.key)
    client.post("/api/sora-2/cancel", json={"taskId": ids[1]}, headers=auth(issued.key))

    as_csv = client.get("/api/sora-2/usage?format=csv", headers=auth(issued.key))
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["taskId"] for r in rows] == ids
    credits = {r["taskId"]: int(r["credits"]) for r in rows}
    assert credits == {ids[0]: PRICE, ids[1]: 0, ids[2]: PRICE}

    as_json = client.get("/api/sora-2/usage?format=json&to=2999-01-01", headers=auth(issued.key))
    statement = json.loads(as_json.text)
    with services.db.read() as session:
        kept = -int(
            session.scalar(
                select(func.sum(LedgerEntry.amount)).where(
                    LedgerEntry.account_id == issued.account,
                    LedgerEntry.kind.in_(("charge", "refund")),
                )
            )
            or 0
        )
    assert statement["totalCredits"] == sum(t["credits"] for t in statement["tasks"]) == kept
    assert statement["accountId"] == issued.account and len(statement["tasks"]) == 3

    bad = client.get("/api/sora-2/usage?format=xml", headers=auth(issued.key))
    assert bad.status_code == 400 and bad.json()["errorCode"] == "INVALID_PARAMETER"
    bad = client.get("/api/sora-2/usage?from=yesterday", headers=auth(issued.key))
    assert bad.status_code == 400
    assert client.get("/api/sora-2/usage").status_code == 401


def test_operator_actions_are_audited(services: Services) -> None:
    issued = admin.issue_key(services, name="audited", credits=5)
    admin.top_up(services, issued.id, 7, note="promo")
    admin.set_limits(services, issued.account, {"daily_credits": 50}, actor="console")
    admin.revoke_key(services, issued.id)
    with services.db.read() as session:
        rows = audit.entries(session, limit=10)
    assert [r.action for r in rows] == [
        "key.revoke",
        "account.limits",
        "credits.grant",
        "key.create",
    ]
    revoke, limits, grant, _create_row = rows
    assert revoke.target == issued.id and revoke.before == {"revokedAt": None}
    assert limits.actor == "console" and limits.before["daily_credits"] is None  # type: ignore[index]
    assert limits.after["daily_credits"] == 50  # type: ignore[index]
    assert grant.before == {"credits": 5} and grant.after["credits"] == 12  # type: ignore[index]
