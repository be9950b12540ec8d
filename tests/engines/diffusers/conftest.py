"""Tiny random-weight diffusers model folders, built once per session (needs the gpu extra),
engines on them closed after each test, and an in-process worker for the service tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from reel.config import Settings
from reel.service.context import Services
from reel.worker.runner import Runner
from tests.engines.diffusers.tiny import FAST, build_ltx095, require_gpu_extra

if TYPE_CHECKING:
    from reel.engines.diffusers.base import DiffusersEngine

#: ``make_engine(kind, model_dir, **params)``: an engine on the FAST settings.
MakeEngine = Callable[..., "DiffusersEngine"]


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Saved diffusers folders, loadable offline: Wan 2.2 TI2V (``wan``), Wan 2.1 text- and
    image-to-video (``wan-t2v``, ``wan-i2v``), Wan 2.1 VACE (``wan-vace``) and LTX-Video
    (``ltx``)."""
    require_gpu_extra()
    from reel.engines.diffusers.tiny import build_pipeline, save_pipeline

    root = tmp_path_factory.mktemp("models")
    return {
        "wan": save_pipeline(build_pipeline("tiny-wan-ti2v"), root / "wan-ti2v"),
        "wan-t2v": save_pipeline(build_pipeline("tiny-wan-t2v"), root / "wan-t2v"),
        "wan-i2v": save_pipeline(build_pipeline("tiny-wan-i2v"), root / "wan-i2v"),
        "wan-vace": save_pipeline(build_pipeline("tiny-wan-vace"), root / "wan-vace"),
        "ltx": save_pipeline(build_pipeline("tiny-ltx"), root / "ltx"),
    }


@pytest.fixture(scope="session")
def tiny_ltx2(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved tiny LTX-2 folder and a latent upsampler folder."""
    require_gpu_extra()
    from reel.engines.diffusers.tiny import build_pipeline, save_pipeline
    from reel.engines.diffusers.tiny_ltx2 import build_upsampler

    root = tmp_path_factory.mktemp("ltx2")
    upsampler = root / "latent_upsampler"
    build_upsampler().save_pretrained(str(upsampler), safe_serialization=True)
    return {"model": save_pipeline(build_pipeline("tiny-ltx2"), root / "ltx2"), "up": upsampler}


@pytest.fixture(scope="session")
def tiny_ltx095(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved tiny LTX-Video folder of the 0.9.5 design (its VAE's blocks)."""
    require_gpu_extra()
    from reel.engines.diffusers.tiny import save_pipeline

    return save_pipeline(build_ltx095(), tmp_path_factory.mktemp("ltx095") / "ltx095")


@pytest.fixture
def runner(services: Services) -> Iterator[Runner]:
    """An in-process worker on the module's models file; its engines (and loaded pipelines)
    are closed afterwards, so no test's pipelines outlive it."""
    worker = Runner(services)
    yield worker
    for engine in worker._engines.values():
        engine.close()


@pytest.fixture
def make_engine(tmp_path: Path) -> Iterator[MakeEngine]:
    """Loads engines on tiny models with the FAST settings; closes them after the test."""
    from reel.engines.diffusers.base import DiffusersEngine
    from reel.engines.registry import load_engine

    made: list[DiffusersEngine] = []
    settings = Settings(data_dir=tmp_path / "data")

    def make(kind: str, model_dir: Path, **params: object) -> DiffusersEngine:
        engine = load_engine(
            kind, params={"model_dir": str(model_dir), **FAST, **params}, settings=settings
        )
        assert isinstance(engine, DiffusersEngine)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()
