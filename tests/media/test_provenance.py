"""C2PA signing with a chain made here: the manifest reads back, validates, and the video plays."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from reel.media.provenance import (
    TRAINED_ALGORITHMIC_MEDIA,
    Facts,
    PemSigner,
    ProvenanceError,
    read_manifest,
    sign_video,
)
from tests.certs import Chain, make_chain
from tests.media.clips import clip, streams


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain()


@pytest.fixture
def video(tmp_path: Path) -> Path:
    return clip(tmp_path / "in.mp4")


def test_signed_video_keeps_playing_with_its_audio_and_validates(
    chain: Chain, video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "signed.mp4"
    sign_video(video, out, PemSigner(chain.chain_pem, chain.key_pem), Facts("9.9", "wan", "wan"))
    assert streams(out) == streams(video)  # every video frame and audio frame still decodes
    summary = read_manifest(out)
    assert summary is not None
    assert summary.validation_state == "Valid"  # intact; the signer is simply not trusted here
    assert summary.status_codes == ["signingCredential.untrusted"]
    assert summary.signer == "Reel test signer" and summary.claim_generator == "Reel 9.9"
    [created] = summary.actions
    assert created["action"] == "c2pa.created"
    assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
    assert created["softwareAgent"] == {"name": "Reel, model wan", "version": "9.9"}
    assert summary.ingredients == []
    trusted = read_manifest(out, trust_anchors_pem=chain.root_pem)
    assert trusted is not None and trusted.validation_state == "Trusted"


@pytest.mark.parametrize("kind", ["rsa", "ed25519"])
def test_other_key_types_sign_too(kind: str, video: Path, tmp_path: Path) -> None:
    other = make_chain(kind)
    signer = PemSigner(other.chain_pem, other.key_pem)
    sign_video(video, tmp_path / "out.mp4", signer, Facts("1", "m", "e"))
    summary = read_manifest(tmp_path / "out.mp4", trust_anchors_pem=other.root_pem)
    assert summary is not None and summary.validation_state == "Trusted", summary.status_codes


def test_image_to_video_names_its_start_image_and_model(
    chain: Chain, video: Path, tmp_path: Path
) -> None:
    image = tmp_path / "start.png"
    Image.new("RGB", (32, 32), "red").save(image)
    facts = Facts("1.0", "wan-i2v", "wan", input_image=image)
    sign_video(video, tmp_path / "out.mp4", PemSigner(chain.chain_pem, chain.key_pem), facts)
    summary = read_manifest(tmp_path / "out.mp4", trust_anchors_pem=chain.root_pem)
    assert summary is not None and summary.validation_state == "Trusted"
    assert summary.ingredients == ["start.png"]
    assert summary.actions[0]["softwareAgent"] == {
        "name": "Reel, model wan-i2v (wan)",
        "version": "1.0",
    }


def test_a_changed_video_no_longer_validates(chain: Chain, video: Path, tmp_path: Path) -> None:
    out = tmp_path / "signed.mp4"
    sign_video(video, out, PemSigner(chain.chain_pem, chain.key_pem), Facts("1", "m", "m"))
    data = bytearray(out.read_bytes())
    mdat = data.rfind(b"mdat")
    data[mdat + 64] ^= 0xFF  # one byte of the media data
    out.write_bytes(bytes(data))
    summary = read_manifest(out, trust_anchors_pem=chain.root_pem)
    assert summary is not None and summary.validation_state == "Invalid"
    assert any("mismatch" in code for code in summary.status_codes), summary.status_codes


def test_unsigned_file_has_no_manifest(video: Path) -> None:
    assert read_manifest(video) is None


def test_a_key_that_is_not_the_leafs_is_refused(chain: Chain) -> None:
    with pytest.raises(ProvenanceError, match="does not belong"):
        PemSigner(chain.chain_pem, make_chain().key_pem)
    with pytest.raises(ProvenanceError, match="not valid PEM"):
        PemSigner("not a certificate", chain.key_pem)
