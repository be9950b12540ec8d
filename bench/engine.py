"""Seconds per denoising step and per video: the stock diffusers call vs Reel's engine, one run.

The baseline is the plain pipeline call (``pipe(prompt, height, width, num_frames, steps)``)
on the same weights, device and dtype; then the same request goes through Reel's engine with
the chosen settings (``--compile``, ``--attention-backend``, ``--first-block-cache``). Step
times are taken in the step callback after a CUDA synchronise, skipping ``--warmup`` steps
(compilation happens there). ``s/video`` is extrapolated to ``--full-steps``: the measured
per-step time times the step count, plus what follows the last step (VAE decode, and for Reel
also scaling and MP4 encoding). Prompt encoding is left out of both.

    # a downloaded model
    python bench/engine.py --model-dir /models/Wan2.1-T2V-1.3B-Diffusers --engine wan \\
        --width 832 --height 480 --frames 81 --steps 12 --warmup 2 --compile
    # the full-size architecture with random weights (nothing downloaded)
    python bench/engine.py --random-weights wan2.1-1.3b --width 832 --height 480 --frames 81
    # LTX-2 (19B + Gemma 3 12B, random weights): video and sound, 10 s at 24 fps
    python bench/engine.py --random-weights ltx2-19b --width 1280 --height 704 --frames 241 \
        --fps 24 --steps 10 --warmup 2 --full-steps 40
    # a tiny architecture on a CPU, to check the script itself
    python bench/engine.py --random-weights tiny-wan-ti2v --device cpu --dtype float32 \\
        --width 64 --height 32 --frames 9 --steps 4 --warmup 1 --full-steps 50
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# src/ replaces this folder on sys.path (bench/queue.py would hide the stdlib).
sys.path[0] = str(Path(__file__).resolve().parents[1] / "src")

from reel.config import Settings
from reel.engines.base import Capabilities, GenerationRequest
from reel.engines.diffusers.base import DiffusersEngine, LoadedPipelines
from reel.engines.diffusers.geometry import ModelInfo
from reel.engines.diffusers.ltx import LTX_DEFAULTS, LTXEngine
from reel.engines.diffusers.params import DiffusersParams
from reel.engines.diffusers.tiny import ARCHS, build_pipeline
from reel.engines.diffusers.wan import WAN_DEFAULTS, WanEngine
from reel.engines.registry import load_engine
from reel.types import Mode, Stage

PROMPT = "A golden retriever running on a beach at sunset, waves, slow tracking shot"


@dataclass
class Timing:
    """Wall-clock marks of one generation: start, the end of each step, the end."""

    sync: Callable[[], None]
    start: float = 0.0
    steps: list[float] = field(default_factory=list[float])
    last_step: float = 0.0
    end: float = 0.0

    def mark_step(self) -> None:
        self.sync()
        self.steps.append(time.perf_counter())

    def step_seconds(self, warmup: int) -> float:
        marks = [self.start, *self.steps]
        durations = [b - a for a, b in itertools.pairwise(marks)][warmup:]
        return statistics.mean(durations)

    @property
    def after_steps(self) -> float:
        return self.end - self.steps[-1]


def run_stock(
    pipe: Any, args: argparse.Namespace, sync: Callable[[], None], steps: int | None = None
) -> Timing:
    import torch

    timing = Timing(sync)

    def on_step(_pipe: Any, _i: int, _t: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
        timing.mark_step()
        return kwargs

    extra = {"frame_rate": args.fps} if "ltx" in type(pipe).__name__.lower() else {}
    sync()
    timing.start = time.perf_counter()
    with torch.inference_mode():
        pipe(
            prompt=PROMPT,
            height=args.height,
            width=args.width,
            num_frames=args.frames,
            num_inference_steps=steps or args.steps,
            generator=torch.Generator("cpu").manual_seed(0),
            output_type="np",
            callback_on_step_end=on_step,
            **extra,
        )
    sync()
    timing.end = time.perf_counter()
    return timing


def reel_params(args: argparse.Namespace, model_dir: str) -> dict[str, object]:
    params: dict[str, object] = {
        "model_dir": model_dir,
        "size": [max(args.width, args.height), min(args.width, args.height)],
        "fps": args.fps,
        "segment_frames": args.frames,
        "steps": args.steps,
        "seed": 0,
        "scale_to_tier": False,
        "device": args.device,
        "dtype": args.dtype,
        "vae_dtype": args.dtype,  # the same VAE dtype as the baseline, for a like-for-like run
        "compile": args.compile,
        "first_block_cache": args.first_block_cache,
    }
    if args.attention_backend:
        params["attention_backend"] = args.attention_backend
    if args.batch_guidance and "ltx" not in str(args.random_weights or args.engine):
        params["batch_guidance"] = True  # LTX pipelines batch their guidance already
    return params


def injected_engine(
    pipe: Any, kind: str, params: dict[str, object], settings: Settings
) -> DiffusersEngine:
    """An engine driving an in-memory (random-weight) pipeline instead of loading a folder."""
    if kind == "ltx2":
        from reel.engines.diffusers.ltx2 import LTX2_DEFAULTS, LTX2Engine, ltx2_pipelines

        ltx2_info = ModelInfo(
            Capabilities(),
            LTX2_DEFAULTS,
            max(32, pipe.vae_spatial_compression_ratio),
            pipe.vae_temporal_compression_ratio,
        )

        class InjectedLTX2(LTX2Engine):
            @classmethod
            def _inspect(cls, p: DiffusersParams) -> ModelInfo:  # noqa: ARG003
                return ltx2_info

            def _load(self, dtype: Any, vae_dtype: Any) -> LoadedPipelines:  # noqa: ARG002
                return ltx2_pipelines(pipe)

        return InjectedLTX2(params=params, settings=settings)
    base: type[DiffusersEngine] = LTXEngine if kind == "ltx" else WanEngine
    if kind == "ltx":
        multiple = pipe.vae_spatial_compression_ratio * pipe.transformer_spatial_patch_size
        info = ModelInfo(
            Capabilities(), LTX_DEFAULTS, max(32, multiple), pipe.vae_temporal_compression_ratio
        )
    else:
        multiple = pipe.vae_scale_factor_spatial * pipe.transformer.config.patch_size[1]
        info = ModelInfo(
            Capabilities(), WAN_DEFAULTS, max(16, multiple), pipe.vae_scale_factor_temporal
        )

    class Injected(base):  # type: ignore[valid-type,misc]
        @classmethod
        def _inspect(cls, p: DiffusersParams) -> ModelInfo:  # noqa: ARG003
            return info

        def _load(self, dtype: Any, vae_dtype: Any) -> LoadedPipelines:  # noqa: ARG002
            return LoadedPipelines(
                t2v=pipe, i2v=None, transformers=[pipe.transformer], vaes=[pipe.vae]
            )

    return Injected(params=params, settings=settings)


def run_reel(
    engine: DiffusersEngine, args: argparse.Namespace, sync: Callable[[], None], out: Path
) -> Timing:
    timing = Timing(sync)

    def sink(stage: Stage, percent: float) -> None:
        if stage is Stage.GENERATING and percent == 0:
            sync()
            timing.start = time.perf_counter()
        elif stage is Stage.GENERATING or stage is Stage.DECODING:
            timing.mark_step()

    req = GenerationRequest(
        task_id="bench",
        prompt=PROMPT,
        mode=Mode.TEXT_TO_VIDEO,
        width=args.width,
        height=args.height,
        duration_s=args.frames / args.fps,
        output_path=out,
    )
    engine.generate(req, sink)
    sync()
    timing.end = time.perf_counter()
    return timing


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--model-dir", help="a diffusers folder (Wan or LTX-Video)")
    source.add_argument(
        "--random-weights",
        choices=[
            a for a in ARCHS if a != "tiny-wan-i2v"
        ],  # text-to-video ones help="build this architecture with random weights"
    )
    ap.add_argument("--engine", choices=["wan", "ltx", "ltx2"], help="engine for --model-dir")
    ap.add_argument("--width", type=int, default=832)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--fps", type=int, default=16)
    ap.add_argument("--steps", type=int, default=12, help="steps run per measurement")
    ap.add_argument("--warmup", type=int, default=2, help="leading steps left out of s/step")
    ap.add_argument("--full-steps", type=int, default=50, help="steps s/video is extrapolated to")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    ap.add_argument("--compile", action="store_true", help="Reel: compile the repeated blocks")
    ap.add_argument("--attention-backend", help="Reel: e.g. flash, _flash_3, sage, native")
    ap.add_argument("--first-block-cache", type=float, default=0.0, help="Reel: cache threshold")
    ap.add_argument(
        "--batch-guidance", action="store_true", help="Reel (Wan): both guidance passes in one call"
    )
    ap.add_argument("--rounds", type=int, default=1, help="alternating stock/Reel runs (median)")
    ap.add_argument("--stock-only", action="store_true", help="measure the stock call alone")
    args = ap.parse_args()
    if args.steps <= args.warmup:
        ap.error("--steps must exceed --warmup")

    import torch
    from diffusers import DiffusionPipeline

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    arch = args.random_weights or ""
    kind = args.engine or ("ltx2" if "ltx2" in arch else "ltx" if "ltx" in arch else "wan")
    settings = Settings(data_dir=Path(tempfile.mkdtemp(prefix="reel-bench-")))
    t0 = time.perf_counter()
    if args.random_weights:
        pipe = build_pipeline(args.random_weights, device=device, dtype=dtype)
        label = f"{args.random_weights} (random weights)"
    else:
        pipe = DiffusionPipeline.from_pretrained(
            args.model_dir, local_files_only=True, dtype=dtype
        ).to(device)
        label = args.model_dir
    pipe.set_progress_bar_config(disable=True)
    print(f"model: {label}; ready in {time.perf_counter() - t0:.1f}s on {device} ({args.dtype})")
    print(
        f"request: {args.width}x{args.height}, {args.frames} frames, "
        f"{args.steps} steps ({args.warmup} warm-up), {args.rounds} round(s)"
    )

    run_stock(pipe, args, sync, steps=args.warmup + 1)  # allocator, kernels, autotuning
    if args.stock_only:
        timings = [run_stock(pipe, args, sync) for _ in range(args.rounds)]
        step = statistics.median(t.step_seconds(args.warmup) for t in timings)
        after = statistics.median(t.after_steps for t in timings)
        print(f"\nstock diffusers: {step:.4f} s/step, {after:.3f} s after the last step, ")
        print(f"s/video at {args.full_steps} steps: {after + args.full_steps * step:.2f}")
        if device.type == "cuda":
            print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
        return
    stocks: list[Timing] = []
    reels: list[Timing] = []
    out = settings.data_dir / "bench.mp4"
    if args.random_weights:  # one set of modules: alternate stock and Reel runs
        engine = injected_engine(pipe, kind, reel_params(args, "random-weights"), settings)
        engine._pipelines(lambda *_: None)  # tune outside the timings
        for _ in range(args.rounds):
            stocks.append(run_stock(pipe, args, sync))
            reels.append(run_reel(engine, args, sync, out))
    else:  # never hold a downloaded model twice: all stock runs, free it, then Reel's load
        stocks = [run_stock(pipe, args, sync) for _ in range(args.rounds)]
        del pipe
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()
        loaded = load_engine(kind, params=reel_params(args, args.model_dir), settings=settings)
        assert isinstance(loaded, DiffusersEngine)
        engine = loaded
        engine._pipelines(lambda *_: None)  # load and tune outside the timings
        run_reel(engine, args, sync, out)  # warm-up (compilation happens here)
        reels = [run_reel(engine, args, sync, out) for _ in range(args.rounds)]

    flags = [
        name
        for name, on in (
            ("batched cfg", args.batch_guidance),
            ("compile", args.compile),
            (f"attention={args.attention_backend}", bool(args.attention_backend)),
            (f"first-block-cache={args.first_block_cache}", args.first_block_cache > 0),
        )
        if on
    ] or ["defaults"]
    rows = []
    for timings in (stocks, reels):
        step = statistics.median(t.step_seconds(args.warmup) for t in timings)
        after = statistics.median(t.after_steps for t in timings)
        rows.append((step, after, after + args.full_steps * step))
    print()
    print(f"{'':28}{'stock diffusers':>18}{'reel (' + ', '.join(flags) + ')':>34}{'ratio':>9}")
    print(f"{'s/step':28}{rows[0][0]:>18.4f}{rows[1][0]:>34.4f}{rows[1][0] / rows[0][0]:>8.2f}x")
    print(f"{'after last step, s':28}{rows[0][1]:>18.3f}{rows[1][1]:>34.3f}")
    label_video = f"s/video at {args.full_steps} steps"
    print(f"{label_video:28}{rows[0][2]:>18.2f}{rows[1][2]:>34.2f}{rows[1][2] / rows[0][2]:>8.2f}x")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated(device) / 2**30:.1f} GiB")
    engine.close()


if __name__ == "__main__":
    main()
