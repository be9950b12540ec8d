"""Helpers for tests on tiny random-weight diffusers models."""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from reel.config import Settings

#: Fast settings for tiny models: 2 fps, 2 steps, short prompts, 64x32 (landscape) frames.
FAST: dict[str, object] = {
    "size": [64, 32],
    "fps": 2,
    "steps": 2,
    "max_sequence_length": 16,
    "scale_to_tier": False,
}


def params_toml(params: Mapping[str, object] = FAST, **changes: object) -> str:
    """``params`` (with ``changes``) as the lines of a models file's ``params`` table."""
    return "\n".join(f"{k} = {json.dumps(v)}" for k, v in {**params, **changes}.items())


def tiers_toml(model: str) -> str:
    """A models file's ``[tiers]`` table with ``model`` serving every tier."""
    return f"""
[tiers]
sora2 = "{model}"
sora2-pro-standard = "{model}"
sora2-pro-high = "{model}"
"""


def service_settings(tmp_path: Path, models: str, **more: Any) -> Settings:
    """Settings for the whole service and an in-process worker on a models file holding
    ``models``: a 30 s lease, heartbeats every second."""
    path = tmp_path / "models.toml"
    path.write_text(models)
    return Settings(
        data_dir=tmp_path / "data",
        models_file=path,
        lease_seconds=30,
        heartbeat_seconds=1,
        **more,
    )


def require_gpu_extra() -> ModuleType:
    """``torch``; or skip the calling module without the gpu extra (fail where CI needs it)."""
    for name in ("diffusers", "transformers", "torch"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            if os.environ.get("REEL_TEST_REQUIRE_SERVICES") == "1":
                raise
            pytest.skip(
                f"needs the gpu extra ({name} is not installed): "
                "pip install torch==2.13.0 (CPU build) then pip install -e '.[test,gpu]'",
                allow_module_level=True,
            )
    return module


def build_ltx095() -> Any:
    """A tiny random-weight ``LTXConditionPipeline`` whose VAE has LTX-Video 0.9.5's encoder
    blocks (``LTXVideo095DownBlock3D``), on the same 4x spatial / 4x temporal grid as
    ``tiny-ltx``."""
    from diffusers import AutoencoderKLLTXVideo, LTXConditionPipeline

    from reel.engines.diffusers.tiny import build_pipeline

    pipe = build_pipeline("tiny-ltx")
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8, 8),
        down_block_types=("LTXVideo095DownBlock3D",) * 4,
        downsample_type=("spatiotemporal", "spatiotemporal", "conv", "conv"),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, False, False),
        decoder_spatio_temporal_scaling=(True, True, False, False),
        decoder_inject_noise=(False,) * 5,
        upsample_residual=(False,) * 4,
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        spatial_compression_ratio=4,
        temporal_compression_ratio=4,
    )
    return LTXConditionPipeline(
        scheduler=pipe.scheduler,
        vae=vae,
        text_encoder=pipe.text_encoder,
        tokenizer=pipe.tokenizer,
        transformer=pipe.transformer,
    )


class PipelineSpy:
    """Records the keyword arguments of every call of a pipeline class; with ``number``, the
    frames each call returns are replaced by numbered grey frames (frame ``j`` is level
    ``8 * j``), so a written video shows which rendered frames it kept, in which order."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, cls: type, *, number: bool = False):
        self.calls: list[dict[str, Any]] = []
        real = cls.__call__

        def spy(pipe: Any, *args: Any, **kwargs: Any) -> Any:
            self.calls.append(kwargs)
            out = real(pipe, *args, **kwargs)
            if number:
                frames = out.frames[0]
                for j in range(frames.shape[0]):
                    frames[j] = 8 * j / 255.0
            return out

        monkeypatch.setattr(cls, "__call__", spy)


def grey_levels(path: Path) -> list[int]:
    """The mean grey level of every frame of a video, rounded to the numbering's step of 8."""
    from reel.media.video import probe, sample_frames

    frames = sample_frames(path, range(probe(path).frames))
    return [round(float(frame.mean()) / 8) for frame in frames]
