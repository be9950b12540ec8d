"""Characters: a name and a reference frame taken from a short video, reusable by one API key.

A create whose prompt names characters of its key (verbatim, at most
:data:`~reel.storage.naming.MAX_REFERENCES`) gets their reference frames; a model that cannot
condition on references refuses it before anything is charged. Another key's character is
indistinguishable from a missing one.
"""

from __future__ import annotations

import io
import re
import secrets
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Final

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, Character
from reel.media.clips import UPLOAD_MAX_BYTES, UPLOAD_MAX_PIXELS, still_frames
from reel.media.errors import MediaError
from reel.media.video import VideoDecodeError, probe
from reel.service import extensions
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import InvalidParameter, NotFound
from reel.service.startimages import start_images
from reel.service.tasks import NewTask
from reel.storage.naming import MAX_REFERENCES, character_frame_key

__all__ = ["CHARACTERS", "create", "delete", "get", "list_for_key", "named_in"]

MIN_SECONDS: Final = 2.0
MAX_SECONDS: Final = 4.0
MAX_NAME: Final = 80
#: Characters one key may keep at once (each is a name matched against its prompts).
MAX_PER_KEY: Final = 100
#: ``Task.extra``: the ids of the characters a create used, in prompt order.
CHARACTERS: Final = "characters"


def create(services: Services, key: ApiKey, name: object, video: bytes | None) -> Character:
    clean = _name(name)
    if video is None:
        raise InvalidParameter("Missing required parameter: 'video'", param="video")
    with services.db.read() as session:
        mine = _by_name(session, key)
    if clean in mine:
        raise InvalidParameter(f"This key already has a character named {clean!r}", param="name")
    if len(mine) >= MAX_PER_KEY:
        raise InvalidParameter(
            f"A key may keep at most {MAX_PER_KEY} characters; delete one first", param="name"
        )
    try:
        png = start_images(services.settings).decode_video(key.id, lambda: _frame(video))
    except MediaError as exc:
        raise InvalidParameter(f"video: {exc.message}", param="video") from exc
    character = Character(
        id="char_" + secrets.token_hex(12),
        key_id=key.id,
        name=clean,
        frame_key="",
        created_at=now(),
    )
    character.frame_key = character_frame_key(character.id)
    services.storage.put_bytes(character.frame_key, png)
    try:
        with services.db.write() as session:
            session.add(character)
    except BaseException:
        services.storage.delete(character.frame_key)
        raise
    return character


def get(services: Services, key: ApiKey, character_id: str) -> Character:
    with services.db.read() as session:
        found = None if "\x00" in character_id else session.get(Character, character_id)
        if found is None or found.key_id != key.id or found.deleted_at is not None:
            raise NotFound("No such character for this key")
        return found


def list_for_key(services: Services, key: ApiKey) -> list[Character]:
    with services.db.read() as session:
        return list(
            session.scalars(
                select(Character)
                .where(Character.key_id == key.id, Character.deleted_at.is_(None))
                .order_by(Character.created_at.desc(), Character.id.desc())
            )
        )


def delete(services: Services, key: ApiKey, character_id: str) -> Character:
    """Gone for new creates at once; tasks that used it keep their own copy of its frame."""
    found = get(services, key, character_id)
    with services.db.write() as session:
        row = session.get(Character, found.id)
        if row is not None:
            row.deleted_at = now()
    services.storage.delete(found.frame_key)
    return found


def named_in(services: Services, key: ApiKey, cmd: NewTask) -> NewTask:
    """``cmd`` with the reference frames of the key's characters its prompt names verbatim."""
    with services.db.read() as session:
        named = [c for c in _by_name(session, key).values() if _mentions(cmd.prompt, c.name)]
    if not named:
        return cmd
    named.sort(key=lambda c: cmd.prompt.find(c.name))
    if len(named) > MAX_REFERENCES:
        raise InvalidParameter(
            f"A prompt may use at most {MAX_REFERENCES} characters "
            f"({', '.join(c.name for c in named)} named)",
            param="prompt",
        )
    extensions.require(services, cmd.model, cmd.tier, "references")
    return replace(
        cmd,
        reference_keys=tuple(c.frame_key for c in named),
        extra={**cmd.extra, CHARACTERS: [c.id for c in named]},
    )


def _by_name(session: Session, key: ApiKey) -> dict[str, Character]:
    rows = session.scalars(
        select(Character).where(Character.key_id == key.id, Character.deleted_at.is_(None))
    )
    return {c.name: c for c in rows}


def _mentions(prompt: str, name: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", prompt) is not None


def _name(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidParameter("Missing required parameter: 'name'", param="name")
    clean = value.strip()
    if len(clean) > MAX_NAME or "\x00" in clean:
        raise InvalidParameter(
            f"'name' must be at most {MAX_NAME} characters, without NUL", param="name"
        )
    return clean


def _frame(data: bytes) -> bytes:
    """The middle frame of a 2–4 s video, re-encoded as PNG."""
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
        (frame,) = still_frames(path, 1)
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="PNG")
    return out.getvalue()
