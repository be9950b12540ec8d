"""The Engine seam: what every generation backend implements.

An engine turns a :class:`GenerationRequest` into an MP4 file and reports progress. It knows
nothing of credits, keys, queues or HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol, TypeAlias, runtime_checkable

from reel.types import Mode, Stage

Operation: TypeAlias = Literal["generate", "extend", "edit"]


class EngineError(Exception):
    """A generation failed inside an engine. ``message`` is safe to show to users."""

    def __init__(self, message: str = "Video generation failed", *, retryable: bool = False):
        super().__init__(message)
        self.message = message
        self.retryable = retryable


class EngineConfigError(EngineError):
    """The engine is misconfigured (missing files, wrong options); raised at load time."""


class Interrupted(Exception):
    """Raised by a :class:`ProgressSink` to stop the engine at the next step boundary."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "canceled" | "draining" | "lease_lost"


class ProgressSink(Protocol):
    """Called by engines as they work. May raise :class:`Interrupted`."""

    def __call__(self, stage: Stage, percent: float) -> None: ...


@dataclass(frozen=True, slots=True)
class GenerationRequest:
    task_id: str
    prompt: str
    mode: Mode
    width: int
    height: int
    duration_s: float
    #: Where the engine must write the finished MP4.
    output_path: Path
    #: The validated, re-encoded start frame (PNG) for image-to-video.
    image_path: Path | None = None
    seed: int = 0
    #: The model's ``params`` table from the models file.
    params: Mapping[str, object] = field(default_factory=dict)
    #: A signed URL of the start frame that Reel itself serves (needs ``REEL_PUBLIC_URL``),
    #: for engines whose backend fetches the image over the network.
    image_url: str | None = None
    #: What an earlier attempt of this task saved with ``checkpoint`` (empty on a first run):
    #: lets an engine pick up work it started elsewhere instead of starting it twice.
    resume: Mapping[str, object] = field(default_factory=dict)
    #: Saves a small JSON-able state on the task row at once, for ``resume``; ``None`` when
    #: the caller keeps no state.
    checkpoint: Callable[[Mapping[str, object]], None] | None = None
    #: Reel's signed link an upstream may call when its job changes (needs ``REEL_PUBLIC_URL``).
    callback_url: str | None = None
    #: Whether a call to ``callback_url`` arrived since the last time this was asked; ``None``
    #: when the caller cannot tell. A callback only says "look now", never what happened.
    woken: Callable[[], bool] | None = None
    #: ``"generate"``; ``"extend"`` (a segment continuing ``image_path``, the source's last
    #: frame); ``"edit"`` (a pass over ``source_video`` keeping its length and size).
    operation: Operation = "generate"
    #: The validated, re-encoded source video of an extension or an edit.
    source_video: Path | None = None
    #: Reference frames (PNG) of the characters the prompt names, in prompt order.
    reference_images: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class EngineOutput:
    path: Path
    width: int
    height: int
    fps: float
    frames: int
    #: Operator-only facts about the run (upstream request id, cost, timings), merged into
    #: the task's hidden ``extra`` when it completes; never shown to end users.
    metadata: Mapping[str, object] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a configured model can do; checked when a worker starts."""

    text_to_video: bool = True
    image_to_video: bool = True
    #: Whole-second video lengths it makes (a longer one may serve a shorter request);
    #: ``None``: any length asked for.
    durations: frozenset[int] | None = None
    #: Continues a video from its last frames (``operation="extend"``).
    extend: bool = False
    #: Passes over a whole video keeping its length and size (``operation="edit"``).
    edit: bool = False
    #: Conditions on characters' reference frames (``reference_images``).
    references: bool = False


@runtime_checkable
class Engine(Protocol):
    #: The label shown to users in task status (``"sandbox"``, ``"wan"``…).
    name: str

    def generate(self, req: GenerationRequest, progress: ProgressSink) -> EngineOutput: ...

    def close(self) -> None: ...
