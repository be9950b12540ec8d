"""The length check every finished video passes before delivery, whatever its engine."""

from __future__ import annotations

import logging
from pathlib import Path

from reel.db.models import Task
from reel.media.video import VideoError, probe
from reel.worker.outputs import Withheld

__all__ = ["SHORT_FRAMES_TOLERATED", "check_length"]

#: How much shorter than sold a video may be, in frames (encoders round the last one or two).
SHORT_FRAMES_TOLERATED = 2
log = logging.getLogger("reel.worker")


def check_length(task: Task, video: Path) -> None:
    """Every engine's video is probed before delivery: one shorter than what was sold (beyond
    a frame or two) is never stored or charged as the longer one; the task fails, refunded."""
    try:
        info = probe(video)
    except VideoError as exc:
        log.warning("task %s: the engine's video does not decode: %s", task.id, exc)
        raise Withheld(
            "GENERATION_FAILED", "The video could not be read back", retryable=False
        ) from exc
    if info.duration_s + SHORT_FRAMES_TOLERATED / info.fps < task.duration_s - 1e-6:
        log.warning(
            "task %s: the engine returned %.2f s for a %d s task (%d frames at %.2f fps)",
            task.id,
            info.duration_s,
            task.duration_s,
            info.frames,
            info.fps,
        )
        raise Withheld(
            "GENERATION_FAILED",
            f"The video came back shorter than requested ({info.duration_s:.1f} s of "
            f"{task.duration_s} s); your credits have been refunded",
            retryable=False,
        )
