"""A character's reference frames: taken from its video, stored, and removed when it goes.

A character keeps up to :data:`~reel.storage.naming.CHARACTER_FRAMES` frames spread evenly over
its 2–4 s video, each re-encoded as PNG under its own storage key (the keys are listed on its
row). Removing a character hides it at once and deletes its frames; a storage delete that fails
leaves the row without ``purged_at`` and the retention sweep (:func:`sweep`) tries again, so no
frame outlives its character.

The characters of a revoked key go the way of the retention period: tasks (the account's, still
visible to its other keys) keep their files ``REEL_VIDEO_RETENTION`` seconds after they
finished whether or not their key was revoked; a character belongs to its key alone and is
last usable when the key is revoked, so the sweep removes it ``REEL_VIDEO_RETENTION`` seconds
after that.
"""

from __future__ import annotations

import io
import logging
import tempfile
from pathlib import Path
from typing import Final

from PIL import Image
from sqlalchemy import func, or_, select, update

from reel.db.models import ApiKey, Character
from reel.media.clips import UPLOAD_MAX_BYTES, UPLOAD_MAX_PIXELS, still_frames
from reel.media.video import VideoDecodeError, probe
from reel.service.clock import now
from reel.service.context import Services
from reel.storage import StorageError
from reel.storage.naming import CHARACTER_FRAMES, character_frame_key

__all__ = ["MAX_SECONDS", "MIN_SECONDS", "discard", "from_video", "store", "sweep"]

log = logging.getLogger("reel.characters")

MIN_SECONDS: Final = 2.0
MAX_SECONDS: Final = 4.0
_BATCH: Final = 200


def from_video(data: bytes) -> list[bytes]:
    """Up to :data:`CHARACTER_FRAMES` frames spread over a 2–4 s video, each as PNG (run it in
    the decode pool: it decodes an upload)."""
    if len(data) > UPLOAD_MAX_BYTES:
        raise VideoDecodeError(f"the video is larger than {UPLOAD_MAX_BYTES} bytes")
    with tempfile.TemporaryDirectory(prefix="reel-character-") as tmp:
        path = Path(tmp) / "upload.bin"
        path.write_bytes(data)
        info = probe(path)
        if info.width * info.height > UPLOAD_MAX_PIXELS:
            raise VideoDecodeError(f"the video's frames are larger than {UPLOAD_MAX_PIXELS} pixels")
        if not MIN_SECONDS - 0.05 <= info.duration_s <= MAX_SECONDS + 0.05:
            raise VideoDecodeError(
                f"a character's video must be {MIN_SECONDS:g}–{MAX_SECONDS:g} s long "
                f"(this one is {info.duration_s:.1f} s)"
            )
        frames = still_frames(path, CHARACTER_FRAMES)
    pngs = []
    for frame in frames:
        out = io.BytesIO()
        Image.fromarray(frame).save(out, format="PNG")
        pngs.append(out.getvalue())
    return pngs


def store(services: Services, character_id: str, frames: list[bytes]) -> list[str]:
    """Store ``frames`` under the character's keys; on a failure none is left behind."""
    keys: list[str] = []
    try:
        for n, png in enumerate(frames):
            keys.append(character_frame_key(character_id, n))
            services.storage.put_bytes(keys[-1], png)
    except BaseException:
        _delete(services, keys)
        raise
    return keys


def discard(services: Services, character: Character) -> bool:
    """Mark ``character`` deleted (if it is not yet) and remove its frames; ``False`` when
    storage refused a delete (the row stays unpurged, so the next sweep tries again)."""
    if not _delete(services, character.frame_keys):
        log.warning(
            "character %s: its frames could not all be removed; the retention sweep retries",
            character.id,
        )
        return False
    t = now()
    with services.db.write() as session:
        session.execute(
            update(Character)
            .where(Character.id == character.id, Character.purged_at.is_(None))
            .values(purged_at=t, deleted_at=func.coalesce(Character.deleted_at, t))
        )
    return True


def sweep(services: Services) -> list[str]:
    """Remove the frames of deleted characters still holding files, and the characters of
    keys revoked more than ``video_retention`` ago; the ids of those now purged."""
    cutoff = now() - services.settings.video_retention
    with services.db.read() as session:
        due = list(
            session.scalars(
                select(Character)
                .join(ApiKey, ApiKey.id == Character.key_id)
                .where(
                    Character.purged_at.is_(None),
                    or_(Character.deleted_at.is_not(None), ApiKey.revoked_at < cutoff),
                )
                .order_by(Character.created_at)
                .limit(_BATCH)
            )
        )
    return [c.id for c in due if discard(services, c)]


def _delete(services: Services, keys: list[str]) -> bool:
    """Delete every key, going on past failures; whether all went."""
    ok = True
    for key in keys:
        try:
            services.storage.delete(key)
        except StorageError:
            ok = False
    return ok
