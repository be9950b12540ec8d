"""Secrets: a weak signing key is refused at start-up; the data dir, the database and the
generated key are private to the service's user from the moment they exist."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from reel.config import MIN_SECRET_LENGTH, Settings
from reel.service.context import build_services, prepare_database


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The most permissive umask: whatever the service creates keeps the mode it asked for."""
    old = os.umask(0)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("value", ["", " " * 40, "short", "k" * (MIN_SECRET_LENGTH - 1)])
def test_empty_or_short_secret_key_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="REEL_SECRET_KEY must be at least 32"):
        Settings(secret_key=value)  # type: ignore[arg-type]
    assert Settings(secret_key="k" * MIN_SECRET_LENGTH).signing_key  # type: ignore[arg-type]


def test_serve_refuses_to_start_with_an_empty_secret_key(tmp_path: Path) -> None:
    env = {**os.environ, "REEL_SECRET_KEY": "", "REEL_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run(
        [sys.executable, "-m", "reel", "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2, out
    assert out.stderr.startswith("error: REEL_SECRET_KEY must be at least"), out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was written


def test_a_truncated_generated_key_file_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    (tmp_path / "secret_key").write_text("\n")
    with pytest.raises(ValueError, match="too short"):
        _ = settings.signing_key


def test_data_dir_database_and_key_are_private_from_the_start(
    tmp_path: Path, loose_umask: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A chmod after the write leaves a window in which the key is readable; with chmod never
    # reached (as if the process died in that window) every file must still be private.
    monkeypatch.setattr(Path, "chmod", lambda self, mode, **kw: None)
    monkeypatch.setattr(os, "chmod", lambda path, mode, **kw: None)
    data = tmp_path / "data"
    settings = Settings(data_dir=data)
    services = build_services(settings)
    try:
        prepare_database(services)
        assert settings.signing_key
    finally:
        services.close()
    assert mode(data) == 0o700
    assert mode(data / "secret_key") == 0o600
    for name in ("reel.db", "reel.db-wal", "reel.db-shm"):
        if (data / name).exists():
            assert mode(data / name) == 0o600, name
    assert not [p for p in data.iterdir() if p.name.startswith(".secret_key")]


def test_an_older_world_readable_database_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "reel.db").touch(mode=0o644)
    (data / "reel.db").chmod(0o644)
    services = build_services(Settings(data_dir=data))
    try:
        prepare_database(services)
    finally:
        services.close()
    assert mode(data / "reel.db") == 0o600
