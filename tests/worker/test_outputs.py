"""Start-up checks of what the worker does to finished videos: marks per model, signing keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from reel.config import Settings
from reel.media.mark import MarkSpec
from reel.media.provenance import ProvenanceError
from reel.service.catalog import CatalogError, parse_catalog
from reel.worker.outputs import load_signer, mark_for
from tests.certs import make_chain


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, **fields)  # type: ignore[arg-type]


def test_marks_are_off_by_default_and_models_can_override_the_settings(tmp_path: Path) -> None:
    assert mark_for(_settings(tmp_path), None) is None
    assert mark_for(_settings(tmp_path), {"position": "center"}) is None  # still nothing to draw
    glob = _settings(tmp_path, mark_text="AI", mark_opacity=0.5)
    assert mark_for(glob, None) == MarkSpec(text="AI", opacity=0.5, size=0.06)
    assert mark_for(glob, False) is None
    assert mark_for(glob, {"text": "Made by Wan", "position": "top-left"}) == MarkSpec(
        text="Made by Wan", position="top-left", opacity=0.5
    )
    models = tmp_path / "models.toml"
    Image.new("RGBA", (8, 4)).save(tmp_path / "logo.png")
    relative = _settings(tmp_path, mark_text="AI", models_file=models)
    spec = mark_for(relative, {"image": "logo.png"})
    assert spec is not None and spec.image == tmp_path / "logo.png" and spec.text is None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"text": "x", "colour": "red"}, "unknown keys"),
        ({"image": "missing.png"}, "no image file"),
        ({"text": "x", "position": "middle"}, "position"),
    ],
)
def test_bad_marks_stop_the_worker_at_start(
    tmp_path: Path, table: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        mark_for(_settings(tmp_path), table)


def test_the_models_file_takes_a_mark_table_or_false() -> None:
    def catalog(mark: object) -> object:
        model = {"engine": "sandbox", "mark": mark}
        return parse_catalog(
            {
                "models": {"m": model},
                "tiers": dict.fromkeys(("sora2", "sora2-pro-standard", "sora2-pro-high"), "m"),
            }
        )

    assert catalog(False).models["m"].mark is False  # type: ignore[attr-defined]
    assert catalog({"text": "AI"}).models["m"].mark == {"text": "AI"}  # type: ignore[attr-defined]
    with pytest.raises(CatalogError, match="mark"):
        catalog(True)


def test_signing_keys_come_as_files_or_pem_text_and_must_match(tmp_path: Path) -> None:
    chain = make_chain()
    cert, key = chain.write(tmp_path)
    from_files = load_signer(_settings(tmp_path, c2pa_cert=str(cert), c2pa_key=str(key)))
    as_text = load_signer(
        _settings(tmp_path, c2pa_cert=chain.chain_pem, c2pa_key=chain.key_pem.decode())
    )
    assert from_files is not None and as_text is not None and from_files.alg == "es256"
    with pytest.raises(ValueError, match="together"):
        load_signer(_settings(tmp_path, c2pa_cert=str(cert)))
    with pytest.raises(ValueError, match="cannot read"):
        load_signer(_settings(tmp_path, c2pa_cert=str(tmp_path / "nope.pem"), c2pa_key=str(key)))
    other = make_chain().write(
        tmp_path / "other" if (tmp_path / "other").mkdir() is None else tmp_path
    )
    with pytest.raises(ProvenanceError, match="does not belong"):
        load_signer(_settings(tmp_path, c2pa_cert=str(cert), c2pa_key=str(other[1])))
