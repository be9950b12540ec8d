"""Where a task's files live in storage, so every layer names them alike."""

from __future__ import annotations


def preview_keys(video_key: str) -> tuple[str, str]:
    """Storage keys of a video's (thumbnail, spritesheet), stored beside it."""
    stem = video_key.rsplit(".", 1)[0]
    return f"{stem}.thumb.webp", f"{stem}.sprite.jpg"


def input_image_key(task_id: str) -> str:
    """Storage key of a task's validated start image."""
    return f"inputs/{task_id}.png"
