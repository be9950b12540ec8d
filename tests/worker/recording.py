"""An engine that records what the worker's operations hand it, and the request they start from."""

from __future__ import annotations

from pathlib import Path

from reel.engines.base import EngineOutput, GenerationRequest
from reel.types import Mode


class Recorder:
    """An engine that only records the requests it is given; it writes no video."""

    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[GenerationRequest] = []

    def generate(self, req: GenerationRequest, progress: object) -> EngineOutput:
        self.calls.append(req)
        return EngineOutput(req.output_path, req.width, req.height, 8.0, 8)

    def close(self) -> None:
        pass


def plain_request(task_id: str, prompt: str, work: Path) -> GenerationRequest:
    """A 4 s 64x36 text-to-video request of ``task_id``, written to ``work``/out.mp4."""
    return GenerationRequest(
        task_id=task_id,
        prompt=prompt,
        mode=Mode.TEXT_TO_VIDEO,
        width=64,
        height=36,
        duration_s=4.0,
        output_path=work / "out.mp4",
    )
