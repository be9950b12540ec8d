"""Console: the accounts page with each account's keys and usage download, and the audit page
(sign-ins and operator actions, user text escaped)."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from reel.service import accounts, admin, keys
from reel.service.context import Services
from tests.api.console.conftest import csrf_of
from tests.conftest import auth


def test_accounts_page_lists_keys_and_downloads_usage(
    admin_client: TestClient, admin_services: Services
) -> None:
    team = admin.issue_key(admin_services, name="<b>team</b>", credits=40)
    admin.issue_key(admin_services, name="team-ci", credits=0, account_id=team.account)
    r = admin_client.post(
        "/api/sora-2/generate",
        json={"prompt": "kite", "mode": "textToVideo"},
        headers=auth(team.key),
    )
    assert r.status_code == 200
    html = admin_client.get("/admin/accounts").text
    assert team.account in html and "team-ci" in html and "<b>team</b>" not in html
    usage = admin_client.get(f"/admin/accounts/{team.account}/usage?format=csv")
    assert usage.status_code == 200 and "attachment" in usage.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(usage.text)))
    assert [row["taskId"] for row in rows] == [r.json()["taskId"]]
    assert admin_client.get("/admin/accounts/acct_nope/usage").status_code == 404


def test_audit_page_shows_sign_in_and_actions(
    admin_client: TestClient, admin_services: Services, anon: TestClient
) -> None:
    issued = admin.issue_key(admin_services, name="audited", credits=1)
    admin.revoke_key(admin_services, issued.id, actor="console")
    html = admin_client.get("/admin/audit").text
    for action in ("admin.sign_in", "key.create", "key.revoke"):
        assert action in html
    assert issued.id in admin_client.get(f"/admin/audit?target={issued.id}").text
    anon.cookies.clear()
    assert anon.get("/admin/audit", follow_redirects=False).status_code in (303, 401)


def test_console_adds_a_key_to_an_existing_account(
    admin_client: TestClient, admin_services: Services
) -> None:
    team = admin.issue_key(admin_services, name="team", credits=40)
    form = admin_client.get("/admin/keys").text
    assert 'name="account"' in form
    r = admin_client.post(
        "/admin/keys",
        data={"csrf": csrf_of(form), "name": "team-ci", "credits": "0", "account": team.account},
    )
    assert r.status_code == 200
    with admin_services.db.read() as session:
        (ci,) = [k for k in keys.list_keys(session) if k.name == "team-ci"]
        assert ci.account_id == team.account and ci.balance == 40
    unknown = admin_client.post(
        "/admin/keys",
        data={"csrf": csrf_of(form), "name": "stray", "credits": "0", "account": "acct_nope"},
    )
    assert unknown.status_code == 400


def test_console_sets_and_clears_an_accounts_limits(
    admin_client: TestClient, admin_services: Services
) -> None:
    team = admin.issue_key(admin_services, name="capped", credits=40)
    form = admin_client.get("/admin/accounts").text
    url = f"/admin/accounts/{team.account}/limits"
    r = admin_client.post(
        url,
        data={
            "csrf": csrf_of(form),
            "daily_credits": "8",
            "daily_videos": "",
            "monthly_credits": "",
        },
    )
    assert r.status_code == 200 and "saved" in r.text
    with admin_services.db.read() as session:
        limits = accounts.limits_of(accounts.get(session, team.account))
    assert (limits.daily_credits, limits.monthly_credits, limits.daily_videos) == (8, None, None)
    bad = admin_client.post(url, data={"csrf": csrf_of(form), "daily_credits": "-3"})
    assert bad.status_code == 400
    gone = admin_client.post(
        "/admin/accounts/acct_nope/limits", data={"csrf": csrf_of(form), "daily_credits": "1"}
    )
    assert gone.status_code == 404
    cleared = admin_client.post(url, data={"csrf": csrf_of(form), "daily_credits": ""})
    assert cleared.status_code == 200
    with admin_services.db.read() as session:
        assert accounts.limits_of(accounts.get(session, team.account)).daily_credits is None
    assert "account.limits" in admin_client.get(f"/admin/audit?target={team.account}").text
