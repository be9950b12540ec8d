"""Tiny random-weight diffusers model folders, built once per session (needs the gpu extra)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"wan": …, "wan-t2v": …, "ltx": …}``: saved diffusers folders, loadable offline."""
    pytest.importorskip("diffusers", reason="needs the gpu extra: pip install '.[gpu]'")
    from reel.engines.diffusers_random import build_pipeline, save_pipeline

    root = tmp_path_factory.mktemp("models")
    return {
        "wan": save_pipeline(build_pipeline("tiny-wan-ti2v"), root / "wan-ti2v"),
        "wan-t2v": save_pipeline(build_pipeline("tiny-wan-t2v"), root / "wan-t2v"),
        "ltx": save_pipeline(build_pipeline("tiny-ltx"), root / "ltx"),
    }


#: Fast settings for tiny models: 2 fps, 2 steps, short prompts, 64x32 (landscape) frames.
FAST = {"size": [64, 32], "fps": 2, "steps": 2, "max_sequence_length": 16, "scale_to_tier": False}
