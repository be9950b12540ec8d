"""Every models-file example in docs/upstreams.md parses and passes the params checks."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from reel.engines.upstream.spec import parse_params

DOC = Path(__file__).resolve().parents[3] / "docs" / "upstreams.md"
KINDS = {"fal": "fal", "replicate": "replicate", "openai_videos": "openai_videos", "upstream": None}


def test_models_file_examples_are_valid() -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), flags=re.S)
    checked = 0
    for block in blocks:
        models = tomllib.loads(block).get("models", {})
        for entry in models.values():
            if entry["engine"] in KINDS:
                parse_params(entry.get("params", {}), default_kind=KINDS[entry["engine"]])  # type: ignore[arg-type]
                checked += 1
    assert checked >= 6, checked
