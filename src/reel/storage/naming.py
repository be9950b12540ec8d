"""Where a task's files live in storage, so every layer names them alike."""

from __future__ import annotations


def preview_keys(video_key: str) -> tuple[str, str]:
    """Storage keys of a video's (thumbnail, spritesheet), stored beside it."""
    stem = video_key.rsplit(".", 1)[0]
    return f"{stem}.thumb.webp", f"{stem}.sprite.jpg"


def input_image_key(task_id: str) -> str:
    """Storage key of a task's validated start image."""
    return f"inputs/{task_id}.png"


def input_video_key(task_id: str) -> str:
    """Storage key of a task's validated source video (an extension's or an edit's)."""
    return f"inputs/{task_id}.source.mp4"


def input_reference_key(task_id: str, index: int) -> str:
    """Storage key of the ``index``-th character reference frame a task was given."""
    return f"inputs/{task_id}.ref{index}.png"


#: At most this many characters per generation.
MAX_CHARACTERS = 2
#: Reference frames a character keeps, spread evenly over its video.
CHARACTER_FRAMES = 3
#: At most this many reference frames per generation: every frame of each character it names,
#: copied to the task as ``input_reference_key(task_id, 0…)``.
MAX_REFERENCES = MAX_CHARACTERS * CHARACTER_FRAMES


def character_frame_key(character_id: str, index: int) -> str:
    """Storage key of a character's ``index``-th reference frame (a character made before
    characters kept several frames has one, ``characters/<id>.png``, named on its row)."""
    return f"characters/{character_id}.{index}.png"


def video_key(task_id: str, attempt: int) -> str:
    """Storage key of the video an attempt makes; each attempt writes its own, so a worker that
    lost its lease can never overwrite the video of the attempt that completed."""
    return f"videos/{task_id}-a{attempt}.mp4"


def task_keys(task_id: str, attempts: int) -> list[str]:
    """Every key a task may have written: its start image, and each attempt's video and
    previews (an attempt killed after storing but before settling leaves its files behind)."""
    keys = [input_image_key(task_id), input_video_key(task_id)]
    keys += [input_reference_key(task_id, n) for n in range(MAX_REFERENCES)]
    for attempt in range(1, max(attempts, 1) + 1):
        video = video_key(task_id, attempt)
        keys += [video, *preview_keys(video)]
    return keys
