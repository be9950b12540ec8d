"""Remix: a new task that continues a completed video from its last frame, with a new prompt."""

from __future__ import annotations

import tempfile
from pathlib import Path

from reel.db.models import ApiKey
from reel.media.errors import MediaError
from reel.media.previews import last_frame_png
from reel.service import characters, extensions, retention, tasks
from reel.service.context import Services
from reel.service.errors import GenerationFailed, MediaExpired, VideoNotReady
from reel.storage import StorageError
from reel.types import Mode, TaskStatus, Tier


def remix_command(services: Services, key: ApiKey, source_id: str, prompt: str) -> tasks.NewTask:
    """The task to create: same model, size, duration and price as the source; its start
    image is the source's last frame; the source's prompt is kept beside the new one."""
    with services.db.read() as session:
        source = tasks.get(session, key, source_id)
    if source.status != TaskStatus.COMPLETED or not source.video_key:
        raise VideoNotReady("Only a completed video can be remixed")
    if retention.is_expired(source, services.settings):
        raise MediaExpired()
    with tempfile.TemporaryDirectory(prefix="reel-remix-") as tmp:
        video = Path(tmp) / "source.mp4"
        try:
            services.storage.get_to(source.video_key, video)
            start_image = last_frame_png(video)
        except (StorageError, MediaError) as exc:
            raise GenerationFailed("The source video could not be read") from exc
    credits = source.credits
    if (source.extra or {}).get(extensions.OPERATION) == "extension":  # sold by its new seconds
        credits = extensions.price(
            services.catalog, source.model, Tier(source.tier), source.duration_s
        )
    return tasks.repeat(
        source,
        drop=frozenset({"callBackUrl", tasks.RETRY_OF, *characters.KEYS, *extensions.KEYS}),
        credits=credits,
        inputs_of=None,  # continues from the last frame only
        extra={"remixedFrom": source.id, "sourcePrompt": source.prompt},
        prompt=prompt,
        mode=Mode.IMAGE_TO_VIDEO,
        source_image_key=None,
        image_data=start_image,
        image_param="video",
    )
