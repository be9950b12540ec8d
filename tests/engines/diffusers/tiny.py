"""Helpers for tests on tiny random-weight diffusers models."""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import pytest

#: Fast settings for tiny models: 2 fps, 2 steps, short prompts, 64x32 (landscape) frames.
FAST: dict[str, object] = {
    "size": [64, 32],
    "fps": 2,
    "steps": 2,
    "max_sequence_length": 16,
    "scale_to_tier": False,
}


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
