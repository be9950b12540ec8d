"""The worker refuses an operation the model's engine no longer does (the models file changed
after the task was accepted): the task fails, it is not quietly made as something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from reel.db.models import Task
from reel.engines.base import Capabilities, EngineError, EngineOutput, GenerationRequest
from reel.storage import LocalStorage
from reel.types import Mode, Stage
from reel.worker import operations


class Recorder:
    name = "recorder"

    def __init__(self) -> None:
        self.calls: list[GenerationRequest] = []

    def generate(self, req: GenerationRequest, progress: object) -> EngineOutput:
        self.calls.append(req)
        raise AssertionError("the engine must not run")

    def close(self) -> None:
        pass


def _sink(stage: Stage, percent: float) -> None:
    pass


@pytest.mark.parametrize(
    ("extra", "lacking"),
    [
        ({"videoOp": "extension", "segmentSeconds": 4}, "extend"),
        ({"videoOp": "edit"}, "edit"),
        ({"characters": ["char_x"]}, "references"),
    ],
)
def test_an_operation_the_engine_cannot_do_fails_before_it_runs(
    tmp_path: Path, extra: dict[str, object], lacking: str
) -> None:
    engine = Recorder()
    req = GenerationRequest(
        task_id="task_x",
        prompt="p",
        mode=Mode.TEXT_TO_VIDEO,
        width=64,
        height=36,
        duration_s=4.0,
        output_path=tmp_path / "out.mp4",
    )
    with pytest.raises(EngineError, match=lacking):
        operations.generate(
            engine,
            Task(id="task_x", extra=extra),
            req,
            _sink,
            storage=LocalStorage(tmp_path, secret=b"s" * 32),
            capabilities=Capabilities,
        )
    assert engine.calls == []
