"""`reel verify FILE`: the manifest summary, the validation state, and the exit status."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from reel.cli.app import app
from reel.media.provenance import Facts, PemSigner, sign_video
from tests.certs import make_chain
from tests.media.clips import clip


def test_verify_prints_the_summary_and_validation_state(tmp_path: Path) -> None:
    chain = make_chain()
    plain = clip(tmp_path / "plain.mp4", audio=False)
    signed = tmp_path / "signed.mp4"
    sign_video(plain, signed, PemSigner(chain.chain_pem, chain.key_pem), Facts("1.2", "wan", "wan"))
    (tmp_path / "root.pem").write_text(chain.root_pem)
    runner = CliRunner()

    result = runner.invoke(app, ["verify", str(signed)])
    assert result.exit_code == 0, result.output
    assert "validation:  Valid" in result.output
    assert "signingCredential.untrusted" in result.output
    assert "c2pa.created  by Reel, model wan" in result.output
    assert "trainedAlgorithmicMedia" in result.output and "Reel test signer" in result.output

    trusted = runner.invoke(app, ["verify", str(signed), "--trust", str(tmp_path / "root.pem")])
    assert trusted.exit_code == 0 and "validation:  Trusted" in trusted.output

    raw = runner.invoke(app, ["verify", str(signed), "--json"])
    assert json.loads(raw.output)["validation_state"] == "Valid"

    none = runner.invoke(app, ["verify", str(plain)])
    assert none.exit_code == 2 and "no C2PA manifest" in none.output

    data = bytearray(signed.read_bytes())
    data[data.rfind(b"mdat") + 64] ^= 0xFF
    signed.write_bytes(bytes(data))
    broken = runner.invoke(app, ["verify", str(signed)])
    assert broken.exit_code == 1 and "validation:  Invalid" in broken.output
