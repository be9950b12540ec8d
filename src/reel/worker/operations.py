"""What the Runner asks of an engine for an extension, an edit or a create with characters.

- an **extension**: the engine makes the new segment (``operation="extend"``, image-to-video
  from the source's last frame, the segment's seconds); the worker joins source and segment,
  sound cross-faded (:func:`reel.media.clips.join`);
- an **edit**: the engine passes over the source (``operation="edit"``, ``source_video``);
- **characters**: their reference frames (each character's, in prompt order, at most
  :data:`~reel.storage.naming.MAX_REFERENCES`), copied to the task when it was created, go to
  the engine as ``reference_images``.

Each works from the task's own validated copies (``inputs/…`` in storage), never the upload.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from reel.db.models import Task
from reel.engines.base import (
    Capabilities,
    Engine,
    EngineError,
    EngineOutput,
    GenerationRequest,
    ProgressSink,
)
from reel.media.clips import join
from reel.media.errors import MediaError
from reel.service import characters, extensions
from reel.storage import Storage, StorageError
from reel.storage.naming import input_reference_key, input_video_key

__all__ = ["generate"]


def generate(
    engine: Engine,
    task: Task,
    req: GenerationRequest,
    progress: ProgressSink,
    *,
    storage: Storage,
    capabilities: Callable[[], Capabilities],
) -> EngineOutput:
    """Run the engine for ``task``. ``capabilities`` is asked only for an operation: a model
    whose engine no longer does it (the models file changed after the task was accepted)
    fails the task, refunded, instead of quietly making something else."""
    extra = task.extra or {}
    work = req.output_path.parent
    used = extra.get(characters.CHARACTERS)
    op = extra.get(extensions.OPERATION)
    needs = ["references"] if isinstance(used, list) and used else []
    if op == "extension":
        needs.append("extend")
    elif op == "edit":
        needs.append("edit")
    if needs:
        caps = capabilities()
        lacking = [n for n in needs if not getattr(caps, n)]
        if lacking:
            raise EngineError(
                f"The model serving this task no longer does this ({', '.join(lacking)}); "
                "your credits have been refunded"
            )
    if isinstance(used, list) and used:
        count = extra.get(characters.REFERENCE_FRAMES)
        if not isinstance(count, int) or count < 1:
            count = len(used)  # accepted when a character had one frame
        refs = tuple(work / f"ref{n}.png" for n in range(count))
        for n, path in enumerate(refs):
            _get(storage, input_reference_key(task.id, n), path, "a character's reference frame")
        req = replace(req, reference_images=refs)
    if op not in ("extension", "edit"):
        return engine.generate(req, progress)
    source = work / "source.mp4"
    _get(storage, input_video_key(task.id), source, "the source video")
    if op == "edit":
        return engine.generate(replace(req, operation="edit", source_video=source), progress)
    seconds = extra.get(extensions.SEGMENT_SECONDS)
    if not isinstance(seconds, int) or seconds <= 0:
        raise EngineError("The extension's length is missing")
    segment = engine.generate(
        replace(
            req,
            operation="extend",
            source_video=source,
            duration_s=float(seconds),
            output_path=work / "segment.mp4",
        ),
        progress,
    )
    try:
        info = join(source, segment.path, req.output_path)
    except MediaError as exc:
        raise EngineError("The extension could not be joined to its source") from exc
    return EngineOutput(
        path=req.output_path,
        width=info.width,
        height=info.height,
        fps=info.fps,
        frames=info.frames,
        metadata=segment.metadata,
    )


def _get(storage: Storage, key: str, path: Path, what: str) -> None:
    try:
        storage.get_to(key, path)
    except StorageError as exc:
        raise EngineError(f"{what.capitalize()} is no longer stored") from exc
