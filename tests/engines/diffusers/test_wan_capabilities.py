"""What each kind of Wan folder can do, as the worker's start-up check reports it (no weights
loaded), and the API's engine table, which must promise what some Wan model does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import Capabilities, EngineConfigError
from reel.engines.registry import check_engine
from reel.service.extensions import ENGINE_OPERATIONS
from tests.engines.diffusers.tiny import require_gpu_extra

require_gpu_extra()
pytestmark = pytest.mark.gpu


def caps(tmp_path: Path, model_dir: Path, **params: object) -> Capabilities:
    settings = Settings(data_dir=tmp_path / "data")
    return check_engine("wan", params={"model_dir": str(model_dir), **params}, settings=settings)


def two_experts(tmp_path: Path, t2v: Path) -> Path:
    """A Wan 2.2 A14B-shaped folder (two transformers, a boundary) from the tiny T2V one."""
    folder = tmp_path / "a14b"
    shutil.copytree(t2v, folder)
    shutil.copytree(folder / "transformer", folder / "transformer_2")
    index = json.loads((folder / "model_index.json").read_text())
    index.update(transformer_2=["diffusers", "WanTransformer3DModel"], boundary_ratio=0.875)
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder


def test_each_kind_of_wan_folder(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    t2v, i2v = tiny_models["wan-t2v"], tiny_models["wan-i2v"]
    expected = {
        # (text, image, extend, edit, references)
        "T2V alone": (caps(tmp_path, t2v), (True, False, False, True, False)),
        "T2V + I2V": (
            caps(tmp_path, t2v, i2v_model_dir=str(i2v)),
            (True, True, True, True, False),
        ),
        "I2V alone": (caps(tmp_path, i2v), (False, True, True, False, False)),
        "TI2V": (caps(tmp_path, tiny_models["wan"]), (True, True, True, True, False)),
        "VACE": (caps(tmp_path, tiny_models["wan-vace"]), (True, True, True, False, True)),
        "A14B": (caps(tmp_path, two_experts(tmp_path, t2v)), (True, False, False, False, False)),
    }
    for kind, (c, flags) in expected.items():
        got = (c.text_to_video, c.image_to_video, c.extend, c.edit, c.references)
        assert got == flags, kind


def test_the_api_table_is_what_wan_models_do(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    folders = [tiny_models[k] for k in ("wan", "wan-t2v", "wan-i2v", "wan-vace")]
    able: set[str] = set()
    for folder in folders:
        c = caps(tmp_path, folder)
        able |= {op for op, yes in [("extend", c.extend), ("edit", c.edit)] if yes}
        able |= {"references"} if c.references else set()
    assert ENGINE_OPERATIONS["wan"] == able


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (0, "above 0 and at most 1"),
        (0.0, "above 0 and at most 1"),
        (1.5, "above 0 and at most 1"),
        (-0.2, "above 0 and at most 1"),
        ("strong", "above 0 and at most 1"),
        (True, "above 0 and at most 1"),
        (0.1, "no denoising step"),  # 0.1 of 2 steps rounds down to none
    ],
)
def test_a_bad_edit_strength_is_refused_at_start(
    tmp_path: Path, tiny_models: dict[str, Path], value: object, why: str
) -> None:
    with pytest.raises(EngineConfigError, match=why):
        caps(tmp_path, tiny_models["wan-t2v"], steps=2, edit_strength=value)


def test_edit_strength_is_for_models_that_edit(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    assert caps(tmp_path, tiny_models["wan"], steps=2, edit_strength=0.5).edit
    assert caps(tmp_path, tiny_models["wan-t2v"], edit_strength=1).edit
    for kind in ("wan-i2v", "wan-vace"):
        with pytest.raises(EngineConfigError, match="cannot edit videos"):
            caps(tmp_path, tiny_models[kind], edit_strength=0.5)


def test_vace_refuses_what_does_not_apply(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    vace = tiny_models["wan-vace"]
    with pytest.raises(EngineConfigError, match="does image-to-video itself"):
        caps(tmp_path, vace, i2v_model_dir=str(tiny_models["wan-i2v"]))
    with pytest.raises(EngineConfigError, match="batch_guidance does not apply to VACE"):
        caps(tmp_path, vace, batch_guidance=True)
    with pytest.raises(EngineConfigError, match="holds a WanVACEPipeline pipeline"):
        caps(tmp_path, tiny_models["wan-t2v"], i2v_model_dir=str(vace))
