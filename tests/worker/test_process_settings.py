"""A worker process rebuilds its supervisor's exact settings, secrets included."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from reel.config import Settings


def test_worker_processes_get_every_secret_in_clear(tmp_path: Path) -> None:
    secrets = {
        "secret_key": "k" * 40,
        "admin_token": "admin-token-" + "a" * 20,
        "c2pa_key": "-----BEGIN PRIVATE KEY-----\nnot-a-real-key\n-----END PRIVATE KEY-----",
        "moderation_api_key": "moderation-key",
        "s3_secret_access_key": "s3-secret",
        "metrics_token": "metrics-token-value",
    }
    settings = Settings(data_dir=tmp_path, **secrets)  # type: ignore[arg-type]
    rebuilt = Settings.model_validate(settings.for_process())
    for name, value in secrets.items():
        field = getattr(rebuilt, name)
        assert isinstance(field, SecretStr), name
        assert field.get_secret_value() == value, name
    assert rebuilt.model_dump() == settings.model_dump()


def test_every_secret_setting_is_covered_above() -> None:
    secret_fields = {
        name
        for name, field in Settings.model_fields.items()
        if "SecretStr" in str(field.annotation)
    }
    assert secret_fields == {
        "secret_key",
        "admin_token",
        "c2pa_key",
        "moderation_api_key",
        "s3_secret_access_key",
        "metrics_token",
    }
