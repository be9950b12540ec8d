"""Batched classifier-free guidance equals the stock pipeline call (tiny random weights, CPU)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from reel.config import Settings
from reel.engines.base import EngineConfigError, GenerationRequest
from reel.engines.diffusers.base import DiffusersEngine
from reel.engines.diffusers.guidance import batched_guidance
from reel.engines.diffusers.wan import wan_batched_guidance
from reel.engines.registry import load_engine
from reel.types import Mode
from tests.engines.diffusers.tiny import FAST, require_gpu_extra

torch = require_gpu_extra()
pytestmark = pytest.mark.gpu

#: float32 on a CPU: a batch of two vs two batches of one differ only in summation order.
TOLERANCE = 1e-4
STEPS = 2


def load(folder: Path) -> Any:
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(folder), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def call_kwargs(**extra: object) -> dict[str, object]:
    return {
        "prompt": "a cat on the beach at sunset",
        "negative_prompt": "blurry city",
        "height": 32,
        "width": 64,
        "num_frames": 5,
        "num_inference_steps": STEPS,
        "guidance_scale": 5.0,
        "max_sequence_length": 16,
        "output_type": "np",
        "generator": torch.Generator("cpu").manual_seed(7),
        **extra,
    }


@contextmanager
def transformer_runs(transformer: Any) -> Iterator[list[int]]:
    """The batch size of each real run of ``transformer`` (its first block's input)."""
    sizes: list[int] = []

    def hook(_module: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        sizes.append(int(hidden.shape[0]))

    blocks = getattr(transformer, "blocks", None) or transformer.transformer_blocks  # Wan / LTX
    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        yield sizes
    finally:
        handle.remove()


def stock_and_batched(pipe: Any, **extra: object) -> tuple[np.ndarray, np.ndarray, list[int]]:
    with torch.inference_mode():
        stock = pipe(**call_kwargs(**extra)).frames[0]
        kwargs = call_kwargs(**extra)
        with transformer_runs(pipe.transformer) as runs, wan_batched_guidance(pipe, kwargs):
            assert "prompt" not in kwargs and "prompt_embeds" in kwargs
            batched = pipe(**kwargs).frames[0]
    return np.asarray(stock), np.asarray(batched), runs


@pytest.mark.parametrize(
    ("model", "mode"),
    [("wan-t2v", "t2v"), ("wan-i2v", "i2v"), ("wan", "i2v")],
    ids=["wan2.1-t2v", "wan2.1-i2v", "wan2.2-ti2v-i2v"],
)
def test_wan_batched_cfg_matches_the_stock_pipeline(
    tiny_models: dict[str, Path], model: str, mode: str
) -> None:
    pipe = load(tiny_models[model])
    extra: dict[str, object] = {}
    if mode == "i2v":
        from diffusers import WanImageToVideoPipeline

        if not isinstance(pipe, WanImageToVideoPipeline):
            pipe = WanImageToVideoPipeline(
                **{name: getattr(pipe, name) for name in ("tokenizer", "text_encoder", "vae")},
                scheduler=pipe.scheduler,
                transformer=pipe.transformer,
                image_encoder=None,
                image_processor=None,
                expand_timesteps=True,
            )
            pipe.set_progress_bar_config(disable=True)
        extra["image"] = Image.new("RGB", (64, 32), (200, 60, 40))

    stock, batched, runs = stock_and_batched(pipe, **extra)

    assert runs == [2] * STEPS  # one transformer run per step, on both guidance halves
    assert stock.shape == batched.shape
    assert float(np.abs(stock - batched).max()) < TOLERANCE
    assert float(np.abs(stock).max()) > 0.01  # a real video, not two blank ones
    assert "forward" not in vars(pipe.transformer)  # the patch is gone afterwards


def test_cfg_pairing_is_undone_and_unmatched_calls_run_unchanged(
    tiny_models: dict[str, Path],
) -> None:
    pipe = load(tiny_models["wan-t2v"])
    transformer = pipe.transformer
    cond = torch.randn(1, 16, 32)
    uncond = torch.randn(1, 16, 32)
    other = torch.randn(1, 16, 32)
    hidden = torch.randn(1, 16, 3, 4, 8)
    timestep = torch.tensor([500.0])

    def run(embeds: Any) -> Any:
        return transformer(
            hidden_states=hidden, timestep=timestep, encoder_hidden_states=embeds, return_dict=False
        )[0]

    with torch.inference_mode():
        alone = [run(x) for x in (cond, uncond, other)]
        with (
            transformer_runs(transformer) as runs,
            batched_guidance([transformer], cond=cond, uncond=uncond),
        ):
            paired = [run(cond), run(uncond)]  # one batched run
            unpaired = [run(uncond), run(other)]  # no cond call before: each runs alone
    assert runs == [2, 1, 1]
    for got, want in zip(
        [*paired, *unpaired], [alone[0], alone[1], alone[1], alone[2]], strict=True
    ):
        assert float((got - want).abs().max()) < TOLERANCE
    assert "forward" not in vars(transformer)


def test_cfg_without_guidance_leaves_the_call_alone(tiny_models: dict[str, Path]) -> None:
    pipe = load(tiny_models["wan-t2v"])
    kwargs = call_kwargs(guidance_scale=1.0)
    with (
        torch.inference_mode(),
        transformer_runs(pipe.transformer) as runs,
        wan_batched_guidance(pipe, kwargs),
    ):
        assert "prompt" in kwargs
        pipe(**kwargs)
    assert runs == [1] * STEPS


def test_ltx_stock_cfg_is_already_one_transformer_call_per_step(
    tiny_models: dict[str, Path],
) -> None:
    pipe = load(tiny_models["ltx"])
    kwargs = call_kwargs(guidance_scale=3.0, width=64, height=32)
    with torch.inference_mode(), transformer_runs(pipe.transformer) as runs:
        pipe(**kwargs)
    assert runs == [2] * STEPS


def test_wan_engine_batch_guidance_cfg_setting(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    params = {"model_dir": str(tiny_models["wan-t2v"]), **FAST, "guidance": 5.0}
    with pytest.raises(EngineConfigError, match="batch_guidance"):
        load_engine(
            "wan",
            params={**params, "batch_guidance": True, "first_block_cache": 0.1},
            settings=settings,
        )
    engine = load_engine("wan", params={**params, "batch_guidance": True}, settings=settings)
    assert isinstance(engine, DiffusersEngine)
    try:
        req = GenerationRequest(
            task_id="task_cfg",
            prompt="a dog running on the sea",
            mode=Mode.TEXT_TO_VIDEO,
            width=64,
            height=32,
            duration_s=2.0,
            output_path=tmp_path / "out.mp4",
            image_path=None,
            seed=1,
        )
        pipes = engine._pipelines(lambda *_: None)
        assert pipes.t2v is not None
        with transformer_runs(pipes.t2v.transformer) as runs:
            engine.generate(req, lambda *_: None)
        assert runs and set(runs) == {2}  # every step one run on both halves
        assert len(runs) % 2 == 0  # FAST: 2 steps per pass
    finally:
        engine.close()
