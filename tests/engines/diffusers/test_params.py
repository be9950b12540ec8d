"""The diffusers engines' params and model-folder checks: pure Python, no gpu extra needed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import Capabilities, EngineConfigError
from reel.engines.diffusers.geometry import ModelInfo, plan_geometry
from reel.engines.diffusers.ltx import LTXEngine
from reel.engines.diffusers.ltx2 import LTX2Engine
from reel.engines.diffusers.model_files import missing_files
from reel.engines.diffusers.params import (
    DiffusersParams,
    ModelDefaults,
    parse_params,
    require_packages,
)
from reel.engines.diffusers.wan import WanEngine
from reel.service.catalog import load_catalog

LABEL = "wan engine"
EXTRA = {"i2v_model_dir", "guidance_2", "flow_shift"}


def parse(params: dict[str, object], settings: Settings | None = None) -> DiffusersParams:
    return parse_params(
        params, label=LABEL, extra_keys=EXTRA, settings=settings or Settings(data_dir=Path("x"))
    )


def test_minimal_params_take_defaults() -> None:
    p = parse({"model_dir": "/models/wan"})
    assert p.model_dir == Path("/models/wan")
    assert (p.size, p.fps, p.steps, p.seed, p.dtype) == (None, None, None, None, None)
    assert p.scale_to_tier and p.offload == "none" and p.device == "auto"


def test_relative_model_dir_is_relative_to_the_models_file(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, models_file=tmp_path / "conf" / "models.toml")
    assert parse({"model_dir": "weights/wan"}, settings).model_dir == tmp_path / "conf/weights/wan"
    assert parse({"model_dir": "/abs/wan"}, settings).model_dir == Path("/abs/wan")


def test_full_params_parse() -> None:
    p = parse(
        {
            "model_dir": "/m",
            "i2v_model_dir": "/i",
            "size": [1280, 720],
            "fps": 16,
            "segment_frames": 81,
            "steps": 40,
            "guidance": 5,
            "guidance_2": 3.5,
            "seed": 42,
            "dtype": "bfloat16",
            "vae_dtype": "float32",
            "offload": "model",
            "vae_tiling": True,
            "compile": True,
            "attention_backend": "flash",
            "first_block_cache": 0.05,
            "scale_to_tier": False,
        }
    )
    assert p.size == (1280, 720) and p.guidance == 5.0 and p.guidance_2 == 3.5
    assert p.seed == 42 and p.offload == "model" and p.i2v_model_dir == Path("/i")
    assert p.compile and p.vae_tiling and not p.scale_to_tier
    assert parse({"model_dir": "/m", "seed": "request"}).seed is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "params.model_dir is required"),
        ({"model_dir": "/m", "fsp": 24}, "unknown params \\['fsp'\\]"),
        ({"model_dir": "/m", "decode_timestep": 0.05}, "unknown params"),  # LTX-only key
        ({"model_dir": "/m", "fps": "24"}, "params.fps must be an integer"),
        ({"model_dir": "/m", "fps": True}, "params.fps must be an integer"),
        ({"model_dir": "/m", "steps": 0}, "params.steps must be an integer from 1"),
        ({"model_dir": "/m", "size": [1280]}, "params.size must be \\[width, height\\]"),
        ({"model_dir": "/m", "size": [1280, 8]}, "params.size must be"),
        ({"model_dir": "/m", "dtype": "int8"}, "params.dtype must be one of"),
        ({"model_dir": "/m", "offload": "disk"}, "params.offload must be one of"),
        ({"model_dir": "/m", "seed": -1}, "params.seed must be an integer"),
        ({"model_dir": "/m", "seed": "random"}, "params.seed must be an integer"),
        ({"model_dir": "/m", "compile": "yes"}, "params.compile must be true or false"),
        ({"model_dir": 3}, "params.model_dir must be a directory path"),
        ({"model_dir": "/m", "attention_backend": "sage_hub"}, "downloads kernels at run time"),
    ],
)
def test_bad_params_are_named(params: dict[str, object], message: str) -> None:
    with pytest.raises(EngineConfigError, match=message) as err:
        parse(params)
    assert err.value.message.startswith(LABEL)


def test_missing_gpu_extra_is_a_clear_error() -> None:
    with pytest.raises(EngineConfigError, match="gpu extra \\(missing no_such_pkg_zz\\)"):
        require_packages(LABEL, ["json", "no_such_pkg_zz"])


# --- model folders -------------------------------------------------------------------------


def _write(path: Path, data: object = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data if data is not None else {}))


def make_folder(root: Path) -> Path:
    """A complete-looking Wan folder (empty weight files: only names are checked)."""
    _write(
        root / "model_index.json",
        {
            "_class_name": "WanPipeline",
            "expand_timesteps": True,
            "scheduler": ["diffusers", "UniPCMultistepScheduler"],
            "text_encoder": ["transformers", "UMT5EncoderModel"],
            "tokenizer": ["transformers", "T5TokenizerFast"],
            "transformer": ["diffusers", "WanTransformer3DModel"],
            "transformer_2": [None, None],
            "vae": ["diffusers", "AutoencoderKLWan"],
        },
    )
    _write(root / "scheduler/scheduler_config.json")
    _write(root / "tokenizer/tokenizer.json")
    for name in ("text_encoder", "transformer", "vae"):
        _write(root / name / "config.json")
    (root / "vae/diffusion_pytorch_model.safetensors").touch()
    (root / "text_encoder/model.safetensors").touch()
    shards = [f"diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    _write(
        root / "transformer/diffusion_pytorch_model.safetensors.index.json",
        {"weight_map": {f"blocks.{i}.w": s for i, s in enumerate(shards)}},
    )
    for shard in shards:
        (root / "transformer" / shard).touch()
    return root


def test_a_complete_folder_has_nothing_missing(tmp_path: Path) -> None:
    assert missing_files(make_folder(tmp_path / "wan")) == []


def test_missing_files_are_named(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "wan")
    (root / "transformer/diffusion_pytorch_model-00002-of-00003.safetensors").unlink()
    (root / "vae/diffusion_pytorch_model.safetensors").unlink()
    (root / "scheduler/scheduler_config.json").unlink()
    (root / "tokenizer/tokenizer.json").unlink()
    assert sorted(missing_files(root)) == [
        "scheduler/scheduler_config.json",
        "tokenizer/tokenizer.json (or spiece.model)",
        "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
        "vae/*.safetensors (weights)",
    ]


def test_missing_folder_and_index(tmp_path: Path) -> None:
    assert missing_files(tmp_path / "nope") == [f"{tmp_path / 'nope'} (not a directory)"]
    assert missing_files(tmp_path) == ["model_index.json"]
    root = make_folder(tmp_path / "wan")
    for path in sorted((root / "text_encoder").iterdir()):
        path.unlink()
    (root / "text_encoder").rmdir()
    assert missing_files(root) == ["text_encoder/"]


# --- geometry ------------------------------------------------------------------------------

TI2V = ModelInfo(
    Capabilities(),
    ModelDefaults(size=(1280, 704), fps=24, segment_frames=121, steps=50, guidance=5.0),
    size_multiple=32,
    temporal_ratio=4,
)


def test_geometry_for_the_sora2_tier() -> None:
    p = parse({"model_dir": "/m"})
    g = plan_geometry(width=1280, height=720, duration_s=10, p=p, info=TI2V, label=LABEL)
    assert (g.gen_width, g.gen_height, g.out_width, g.out_height, g.fps) == (
        1280,
        704,
        1280,
        720,
        24,
    )
    assert g.plan.total == 240 and len(g.plan.segments) == 2
    portrait = plan_geometry(width=720, height=1280, duration_s=15, p=p, info=TI2V, label=LABEL)
    assert (portrait.gen_width, portrait.gen_height) == (704, 1280)
    assert (portrait.out_width, portrait.out_height) == (720, 1280)
    assert portrait.plan.total == 360 and len(portrait.plan.segments) == 3


def test_geometry_rounds_to_the_model_multiple_and_can_keep_native_size() -> None:
    p = parse({"model_dir": "/m", "size": [1280, 720], "fps": 16, "scale_to_tier": False})
    g = plan_geometry(width=1920, height=1080, duration_s=10, p=p, info=TI2V, label=LABEL)
    assert (g.gen_width, g.gen_height) == (1280, 704)  # 720 is not a multiple of 32
    assert (g.out_width, g.out_height) == (1280, 704)
    assert g.fps == 16 and g.plan.total == 160


def test_segment_frames_must_suit_the_vae() -> None:
    p = parse({"model_dir": "/m", "segment_frames": 80})
    with pytest.raises(EngineConfigError, match=r"segment_frames must be 4k\+1.*e\.g\. 81"):
        plan_geometry(width=1280, height=720, duration_s=10, p=p, info=TI2V, label=LABEL)


# --- the shipped example -------------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "models.gpu.toml"


def _uncommented(text: str) -> str:
    """The example with its commented-out model tables switched on."""
    return re.sub(r"^# (\[|\w+ = )", r"\1", text, flags=re.MULTILINE)


@pytest.mark.parametrize("text", [EXAMPLE.read_text(), _uncommented(EXAMPLE.read_text())])
def test_example_models_file_is_valid(text: str, tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(text)
    catalog = load_catalog(path)
    settings = Settings(data_dir=tmp_path, models_file=path)
    extras = {
        "wan": WanEngine.extra_keys,
        "ltx": LTXEngine.extra_keys,
        "ltx2": LTX2Engine.extra_keys,
    }
    for spec in catalog.models.values():
        p = parse_params(
            spec.params, label=spec.engine, extra_keys=extras[spec.engine], settings=settings
        )
        assert p.model_dir.is_absolute()
    assert set(catalog.tiers.values()) <= set(catalog.models)
    assert {catalog.models[name].engine for name in catalog.tiers.values()} == {"ltx2"}
    if text != EXAMPLE.read_text():
        assert {"ltx-video", "wan21-1_3b", "wan22-ti2v-5b"} <= set(catalog.models)
