"""Operator commands go through the same service functions (and checks) as the console."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reel.cli.app import app


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("REEL_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(app, list(args))
        return result.exit_code, result.output

    return invoke


def _create(run, name: str = "ops") -> str:  # type: ignore[no-untyped-def]
    code, out = run("keys", "create", "--name", name, "--credits", "5", "--json")
    assert code == 0, out
    return str(json.loads(out.strip().splitlines()[-1])["id"])


def test_credits_add_refuses_a_revoked_key_as_the_console_does(run) -> None:  # type: ignore[no-untyped-def]
    key_id = _create(run)
    assert run("keys", "revoke", key_id)[0] == 0
    code, out = run("credits", "add", key_id, "10")
    assert code == 1
    assert "revoked" in out
    code, out = run("credits", "show", key_id)
    assert code == 0 and "balance 5 " in out.replace("[bold]", "").replace("[/bold]", "")


def test_credits_add_grants_to_a_live_key(run) -> None:  # type: ignore[no-untyped-def]
    key_id = _create(run)
    code, out = run("credits", "add", key_id, "10", "--note", "invoice 7")
    assert code == 0, out
    assert "balance 15" in out
    code, out = run("credits", "show", key_id)
    assert "invoice 7" in out
