"""bench/gpu.sh is ready for a GPU: valid shell, and its Python entry runs on tiny models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.engines.diffusers.tiny import require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu

ROOT = Path(__file__).resolve().parents[2]


def test_gpu_script_is_valid_bash_with_a_tiny_mode() -> None:
    script = ROOT / "bench" / "gpu.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "--tiny" in text and "wan2.1-1.3b" in text and "ltx2-19b" in text


def run_engine_bench(model: str, *argv: str) -> str:
    """``bench/engine.py`` on random weights of ``model``, on the CPU in float32, with
    ``argv``; what it printed."""
    tiny = ("--random-weights", model, "--device", "cpu", "--dtype", "float32")
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), *tiny, *argv],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout


def test_gpu_script_entry_runs_stock_vs_reel_on_a_tiny_wan() -> None:
    # What `bench/gpu.sh --tiny` runs first, shortened (2 steps, 5 frames).
    out = run_engine_bench(
        "tiny-wan-t2v",
        *("--width", "64", "--height", "32", "--frames", "5", "--fps", "8"),
        *("--steps", "2", "--warmup", "1", "--batch-guidance", "--attention-backend", "auto"),
    )
    assert "reel (batched cfg, attention=auto)" in out
    assert "s/video at 50 steps" in out and out.count("x\n") >= 2  # both ratios printed


def test_gpu_script_entry_runs_stock_vs_reel_on_a_tiny_ltx2() -> None:
    # What `bench/gpu.sh --tiny` runs for LTX-2, shortened: both sides, not the stock one alone.
    out = run_engine_bench(
        "tiny-ltx2",
        *("--width", "64", "--height", "64", "--frames", "17", "--fps", "8"),
        *("--steps", "2", "--warmup", "1", "--full-steps", "30", "--attention-backend", "auto"),
    )
    assert "stock diffusers" in out and "reel (attention=auto)" in out, out
    assert "s/video at 30 steps" in out and out.count("x\n") >= 2
