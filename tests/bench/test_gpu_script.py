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


def test_gpu_script_entry_runs_stock_vs_reel_on_a_tiny_wan() -> None:
    # What `bench/gpu.sh --tiny` runs first, shortened (2 steps, 5 frames).
    argv = [
        *("--random-weights", "tiny-wan-t2v", "--device", "cpu", "--dtype", "float32"),
        *("--width", "64", "--height", "32", "--frames", "5", "--fps", "8"),
        *("--steps", "2", "--warmup", "1", "--batch-guidance", "--attention-backend", "auto"),
    ]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), *argv],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    assert "reel (batched cfg, attention=auto)" in out
    assert "s/video at 50 steps" in out and out.count("x\n") >= 2  # both ratios printed


def test_gpu_script_entry_runs_stock_vs_reel_on_a_tiny_ltx2() -> None:
    # What `bench/gpu.sh --tiny` runs for LTX-2, shortened: both sides, not the stock one alone.
    argv = [
        *("--random-weights", "tiny-ltx2", "--device", "cpu", "--dtype", "float32"),
        *("--width", "64", "--height", "64", "--frames", "17", "--fps", "8"),
        *("--steps", "2", "--warmup", "1", "--full-steps", "30", "--attention-backend", "auto"),
    ]
    out = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "engine.py"), *argv],
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    ).stdout
    assert "stock diffusers" in out and "reel (attention=auto)" in out, out
    assert "s/video at 30 steps" in out and out.count("x\n") >= 2
