"""Where a task's files live in storage, by naming convention."""

from __future__ import annotations


def preview_keys(video_key: str) -> tuple[str, str]:
    """(thumbnail, spritesheet) keys stored beside ``video_key``."""
    stem = video_key.rsplit(".", 1)[0]
    return f"{stem}.thumb.webp", f"{stem}.sprite.jpg"


def input_image_key(task_id: str) -> str:
    return f"inputs/{task_id}.png"
