"""The worker refuses an operation the model's engine no longer does (the models file changed
after the task was accepted): the task fails, it is not quietly made as something else."""

from __future__ import annotations

from pathlib import Path

import pytest

from reel.db.models import Task
from reel.engines.base import Capabilities, EngineError
from reel.storage import LocalStorage
from reel.types import Stage
from reel.worker import operations
from tests.worker.recording import Recorder, plain_request


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
    req = plain_request("task_x", "p", tmp_path)
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
