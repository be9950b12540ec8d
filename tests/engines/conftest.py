"""Tiny random-weight diffusers model folders, built once per session (needs the gpu extra)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.tiny import require_gpu_extra


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"wan": …, "wan-t2v": …, "ltx": …}``: saved diffusers folders, loadable offline."""
    require_gpu_extra()
    from reel.engines.diffusers_random import build_pipeline, save_pipeline

    root = tmp_path_factory.mktemp("models")
    return {
        "wan": save_pipeline(build_pipeline("tiny-wan-ti2v"), root / "wan-ti2v"),
        "wan-t2v": save_pipeline(build_pipeline("tiny-wan-t2v"), root / "wan-t2v"),
        "ltx": save_pipeline(build_pipeline("tiny-ltx"), root / "ltx"),
    }
