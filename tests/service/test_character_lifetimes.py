"""How long a character's frames live: deleting it removes them; a delete that storage refused is
retried by the retention sweep; a revoked key's characters go a retention period after it was
revoked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from sqlalchemy import update

from reel.db.models import ApiKey, Character
from reel.media.video import encode_frames
from reel.service import admin, characters, retention
from reel.service.clock import now
from reel.service.context import Services
from reel.storage import Storage, StorageError
from reel.storage.naming import CHARACTER_FRAMES
from tests.factories import make_key
from tests.service.helpers import key_row


class RefusingDeletes:
    """The real storage, except that deletes fail while ``refusing`` (an S3 outage)."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner
        self.refusing = True

    def delete(self, key: str) -> None:
        if self.refusing:
            raise StorageError(f"could not delete {key}: service unavailable")
        self.inner.delete(key)

    def put_file(self, key: str, src: Path) -> None:
        self.inner.put_file(key, src)

    def put_bytes(self, key: str, data: bytes) -> None:
        self.inner.put_bytes(key, data)

    def get_to(self, key: str, dest: Path) -> None:
        self.inner.get_to(key, dest)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def url(self, key: str, *, base_url: str, expires_in: int) -> str:
        return self.inner.url(key, base_url=base_url, expires_in=expires_in)


def clip(tmp_path: Path, seconds: float = 3) -> bytes:
    """A 64x36 clip whose picture changes every frame."""
    xs = np.linspace(0, 255, 64, dtype=np.float32)[None, :, None]
    frames = [
        np.broadcast_to((xs + i * 9) % 256, (36, 64, 3)).astype(np.uint8).copy()
        for i in range(round(seconds * 8))
    ]
    path = tmp_path / "clip.mp4"
    encode_frames(frames, path, fps=8)
    return path.read_bytes()


def make_character(services: Services, key_id: str, name: str, tmp_path: Path) -> Character:
    made = characters.create(services, key_row(services, key_id), name, clip(tmp_path))
    assert len(made.frame_keys) == CHARACTER_FRAMES
    assert all(services.storage.exists(k) for k in made.frame_keys)
    return made


def row(services: Services, character_id: str) -> Character:
    with services.db.read() as session:
        found = session.get(Character, character_id)
        assert found is not None
        return found


def test_deleting_a_character_removes_every_frame(services: Services, tmp_path: Path) -> None:
    key = make_key(services)
    made = make_character(services, key.id, "Mara", tmp_path)
    characters.delete(services, key_row(services, key.id), made.id)
    assert not any(services.storage.exists(k) for k in made.frame_keys)
    gone = row(services, made.id)
    assert gone.deleted_at is not None and gone.purged_at is not None
    assert retention.sweep(services).characters == []  # nothing left to do


def test_a_refused_delete_is_retried_by_the_sweep(services: Services, tmp_path: Path) -> None:
    key = make_key(services)
    made = make_character(services, key.id, "Mara", tmp_path)
    other = make_character(services, key.id, "Ivo", tmp_path)
    flaky = RefusingDeletes(services.storage)
    outage = dataclasses.replace(services, storage=flaky)

    characters.delete(outage, key_row(services, key.id), made.id)  # the API answers "deleted"
    listed = characters.list_for_key(services, key_row(services, key.id))
    assert [c.id for c in listed] == [other.id]  # gone for new creates at once
    assert all(services.storage.exists(k) for k in made.frame_keys)
    assert row(services, made.id).purged_at is None
    assert retention.sweep(outage).characters == []  # still refused: kept for the next pass
    assert row(services, made.id).purged_at is None

    flaky.refusing = False
    assert retention.sweep(outage).characters == [made.id]
    assert not any(services.storage.exists(k) for k in made.frame_keys)
    assert row(services, made.id).purged_at is not None
    assert all(services.storage.exists(k) for k in other.frame_keys)  # a live one is untouched
    assert retention.sweep(outage).characters == []


def test_a_revoked_keys_characters_go_a_retention_period_after_it_was_revoked(
    services: Services, tmp_path: Path
) -> None:
    long_ago, lately, live = (make_key(services, name=n) for n in ("old", "recent", "live"))
    made = {
        k.id: make_character(services, k.id, "Mara", tmp_path) for k in (long_ago, lately, live)
    }
    for key in (long_ago, lately):
        admin.revoke_key(services, key.id)
    retention_s = services.settings.video_retention
    with services.db.write() as session:
        session.execute(
            update(ApiKey)
            .where(ApiKey.id == long_ago.id)
            .values(revoked_at=now() - retention_s - 60)
        )
        session.execute(
            update(ApiKey).where(ApiKey.id == lately.id).values(revoked_at=now() - retention_s + 60)
        )

    assert retention.sweep(services).characters == [made[long_ago.id].id]
    assert not any(services.storage.exists(k) for k in made[long_ago.id].frame_keys)
    swept = row(services, made[long_ago.id].id)
    assert swept.deleted_at is not None and swept.purged_at is not None
    for key in (lately, live):
        assert all(services.storage.exists(k) for k in made[key.id].frame_keys)
        assert row(services, made[key.id].id).deleted_at is None
