"""Console: the characters page lists every key's characters and deletes one (CSRF-checked,
audited, its frames removed)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from reel.service import admin, audit, characters
from reel.service.context import Services
from tests.api.console.conftest import csrf_of
from tests.service.helpers import key_row
from tests.service.test_character_lifetimes import clip


def test_characters_page_lists_and_deletes(
    admin_client: TestClient, admin_services: Services, tmp_path: Path
) -> None:
    assert "No characters" in admin_client.get("/admin/characters").text  # the empty state
    alice = admin.issue_key(admin_services, name="alice-prod", credits=0)
    bob = admin.issue_key(admin_services, name="<i>bob</i>", credits=0)
    video = clip(tmp_path)
    mara = characters.create(admin_services, key_row(admin_services, alice.id), "Mara", video)
    ivo = characters.create(admin_services, key_row(admin_services, bob.id), "<b>Ivo</b>", video)

    html = admin_client.get("/admin/characters").text
    for shown in (mara.id, ivo.id, "Mara", "alice-prod", f"/admin/keys/{alice.id}"):
        assert shown in html
    assert "<b>Ivo</b>" not in html and "&lt;b&gt;Ivo&lt;/b&gt;" in html  # user text escaped
    assert '<table class="table">' in html and "No characters" not in html
    one_key = admin_client.get(f"/admin/characters?key={alice.id}").text
    assert mara.id in one_key and ivo.id not in one_key
    assert f"/admin/characters?key={alice.id}" in admin_client.get(f"/admin/keys/{alice.id}").text

    url = f"/admin/characters/{mara.id}/delete"
    refused = admin_client.post(url, data={"csrf": "forged", "key": alice.id})
    assert refused.status_code == 403
    assert admin_services.storage.exists(mara.frame_keys[0])
    done = admin_client.post(
        url, data={"csrf": csrf_of(html), "key": alice.id}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/characters?")
    after = admin_client.get(done.headers["location"]).text
    assert "Character deleted" in after and mara.id not in after
    assert not any(admin_services.storage.exists(k) for k in mara.frame_keys)
    assert characters.list_for_key(admin_services, key_row(admin_services, alice.id)) == []
    with admin_services.db.read() as session:
        (entry,) = audit.entries(session, action="character.delete")
    assert entry.target == mara.id and entry.actor == audit.CONSOLE
    assert entry.before == {"key": alice.id, "name": "Mara"}
    again = admin_client.post(url, data={"csrf": csrf_of(html), "key": ""})
    assert again.status_code == 404 and ivo.id in again.text
