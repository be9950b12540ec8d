"""The source video of an extension or an edit: a completed video of the same key, or an upload.

Either way the task works from a validated copy on local disk while it is created: a reference
is read back from storage (the key's own, completed, /v1 video whose files are still kept); an
upload is checked (size, length, decodable) and re-encoded in the start-image decode pool, off
the request's thread, before anything is charged.

A reference runs as the model that made it. An upload runs as the ``/v1`` model the request
names (``sora-2`` when it names none), checked and priced as a create of that model at the
upload's size (:func:`reel.service.pricing.openai_tier`).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from reel.db.models import ApiKey, Task
from reel.media.clips import Normalized, normalize
from reel.media.errors import MediaError
from reel.service import pricing, retention, tasks
from reel.service.context import Services
from reel.service.errors import (
    GenerationFailed,
    InvalidParameter,
    MediaExpired,
    TaskNotFound,
    VideoNotReady,
)
from reel.service.startimages import start_images
from reel.storage import StorageError
from reel.types import Tier

__all__ = ["OPENAI_SURFACE", "Source", "SourceRef", "open_source"]

OPENAI_SURFACE: Final = "openai"
#: An uploaded source is re-encoded at the sora-2 size of its orientation (every /v1 model
#: makes both), and runs as sora-2 unless the request names another model.
UPLOAD_MODEL: Final = pricing.OPENAI_DEFAULT_MODEL
LANDSCAPE: Final = (1280, 720)
PORTRAIT: Final = (720, 1280)


@dataclass(frozen=True, slots=True)
class SourceRef:
    """What a request named: ``video_id`` (JSON ``{"id": …}``) or ``upload`` (multipart), and
    the ``model`` field, if any (an upload's model; a reference's must be its source's)."""

    video_id: str | None = None
    upload: bytes | None = None
    model: object = None


@dataclass(frozen=True, slots=True)
class Source:
    path: Path
    seconds: int
    width: int
    height: int
    tier: Tier
    #: The models-file model that made it (``None``: the tier's).
    model: str | None
    #: The /v1 model name it is shown under.
    openai_model: str
    #: The task that made it; ``None`` for an upload.
    task: Task | None

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"


@contextmanager
def open_source(
    services: Services, key: ApiKey, ref: SourceRef, *, min_seconds: float, max_seconds: float
) -> Iterator[Source]:
    """The source, on local disk for the ``with`` block (removed after)."""
    with tempfile.TemporaryDirectory(prefix="reel-source-") as tmp:
        work = Path(tmp)
        if ref.upload is not None:
            yield _uploaded(services, key, ref.upload, ref.model, work, min_seconds, max_seconds)
        elif ref.video_id is not None:
            yield _referenced(services, key, ref.video_id, ref.model, work)
        else:
            raise InvalidParameter("Missing required parameter: 'video'", param="video")


def _referenced(
    services: Services, key: ApiKey, video_id: str, asked: object, work: Path
) -> Source:
    with services.db.read() as session:
        task = tasks.get(session, key, video_id)
    if task.surface != OPENAI_SURFACE:
        raise TaskNotFound()
    if task.status != "completed" or not task.video_key:
        raise VideoNotReady("Only a completed video can be extended or edited")
    if retention.is_expired(task, services.settings):
        raise MediaExpired()
    shown = (task.extra or {}).get("openaiModel")
    tier = Tier(task.tier)
    openai_model = shown if isinstance(shown, str) else pricing.TIER_OPENAI_MODEL[tier]
    if asked not in (None, "", openai_model):
        raise InvalidParameter(
            f"'model' is for uploads: a referenced video runs as its source's model "
            f"({openai_model})",
            param="model",
        )
    path = work / "source.mp4"
    try:
        services.storage.get_to(task.video_key, path)
    except StorageError as exc:
        raise GenerationFailed("The source video could not be read") from exc
    return Source(
        path=path,
        seconds=task.duration_s,
        width=task.width,
        height=task.height,
        tier=tier,
        model=task.model,
        openai_model=openai_model,
        task=task,
    )


def _uploaded(
    services: Services,
    key: ApiKey,
    data: bytes,
    asked: object,
    work: Path,
    min_seconds: float,
    max_seconds: float,
) -> Source:
    name = asked or UPLOAD_MODEL
    # Every /v1 model makes both upload sizes: an unknown one is refused before decoding.
    pricing.openai_tier(services.catalog, name, _size(LANDSCAPE))

    def fit(width: int, height: int) -> tuple[int, int]:
        return LANDSCAPE if width > height else PORTRAIT

    def decode() -> Normalized:
        return normalize(data, work, fit=fit, min_seconds=min_seconds, max_seconds=max_seconds)

    try:
        clip = start_images(services.settings).decode_video(key.id, decode)
    except MediaError as exc:
        raise InvalidParameter(f"video: {exc.message}", param="video") from exc
    tier, model = pricing.openai_tier(services.catalog, name, _size((clip.width, clip.height)))
    return Source(
        path=clip.path,
        seconds=clip.seconds,
        width=clip.width,
        height=clip.height,
        tier=tier,
        model=model,
        openai_model=str(name),
        task=None,
    )


def _size(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"
