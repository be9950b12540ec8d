"""The base install never imports the heavy libraries; the diffusers engines load them lazily."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
import reel.api.app, reel.cli.app, reel.worker.runner, reel.worker.supervisor
from reel.engines.registry import engine_class
engine_class("wan"), engine_class("ltx"), engine_class("sandbox")
import reel.engines.diffusers.tiny
heavy = sorted({"torch", "diffusers", "transformers", "accelerate"} & set(sys.modules))
print(",".join(heavy))
"""


def test_no_heavy_import_until_a_pipeline_loads() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "", f"imported at startup: {done.stdout}"
