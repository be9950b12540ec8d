"""Characters: a name and reference frames taken from a short video, reusable by one API key.

A create whose prompt names characters of its key (verbatim, at most
:data:`~reel.storage.naming.MAX_CHARACTERS`) gets every reference frame of each, in prompt
order (at most :data:`~reel.storage.naming.MAX_REFERENCES` in all); a model that cannot condition
on references refuses it before anything is charged. Another key's character is
indistinguishable from a missing one. How frames are taken, stored and removed (and when the
retention sweep removes them) is :mod:`reel.service.character_frames`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import replace
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from reel.db.models import ApiKey, Character
from reel.media.errors import MediaError
from reel.service import character_frames, extensions
from reel.service.clock import now
from reel.service.context import Services
from reel.service.errors import InvalidParameter, NotFound
from reel.service.startimages import start_images
from reel.service.tasks import NewTask
from reel.storage.naming import MAX_CHARACTERS

__all__ = [
    "CHARACTERS",
    "KEYS",
    "REFERENCE_FRAMES",
    "create",
    "delete",
    "get",
    "list_for_key",
    "named_in",
]

MAX_NAME: Final = 80
#: Characters one key may keep at once (each is a name matched against its prompts).
MAX_PER_KEY: Final = 100
#: ``Task.extra``: the ids of the characters a create used, in prompt order.
CHARACTERS: Final = "characters"
#: ``Task.extra``: how many reference frames those characters gave it, all told (absent on a
#: task accepted when each character had one frame).
REFERENCE_FRAMES: Final = "referenceFrames"
#: Every ``Task.extra`` key above: a remix does not carry them.
KEYS: Final = frozenset({CHARACTERS, REFERENCE_FRAMES})


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
        frames = start_images(services.settings).decode_video(
            key.id, lambda: character_frames.from_video(video)
        )
    except MediaError as exc:
        raise InvalidParameter(f"video: {exc.message}", param="video") from exc
    character_id = "char_" + secrets.token_hex(12)
    character = Character(
        id=character_id,
        key_id=key.id,
        name=clean,
        frame_keys=character_frames.store(services, character_id, frames),
        created_at=now(),
    )
    try:
        with services.db.write() as session:
            session.add(character)
    except BaseException:
        character_frames.discard(services, character)
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
    """Gone for new creates at once; its frames go from storage now, or, if storage refuses,
    with the next retention sweep. Tasks that used it keep their own copies of its frames."""
    found = get(services, key, character_id)
    with services.db.write() as session:
        row = session.get(Character, found.id)
        if row is not None and row.deleted_at is None:
            row.deleted_at = now()
    character_frames.discard(services, found)
    return found


def named_in(services: Services, key: ApiKey, cmd: NewTask) -> NewTask:
    """``cmd`` with the reference frames of the key's characters its prompt names verbatim."""
    with services.db.read() as session:
        named = [c for c in _by_name(session, key).values() if _mentions(cmd.prompt, c.name)]
    if not named:
        return cmd
    named.sort(key=lambda c: cmd.prompt.find(c.name))
    if len(named) > MAX_CHARACTERS:
        raise InvalidParameter(
            f"A prompt may use at most {MAX_CHARACTERS} characters "
            f"({', '.join(c.name for c in named)} named)",
            param="prompt",
        )
    extensions.require(services, cmd.model, cmd.tier, "references")
    return replace(
        cmd,
        reference_keys=tuple(k for c in named for k in c.frame_keys),
        extra={
            **cmd.extra,
            CHARACTERS: [c.id for c in named],
            REFERENCE_FRAMES: sum(len(c.frame_keys) for c in named),
        },
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
