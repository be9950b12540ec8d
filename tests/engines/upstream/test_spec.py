"""Request mapping as data, params checking, breaker and Retry-After, credentials by env name."""

from __future__ import annotations

from email.utils import formatdate
from pathlib import Path

import pytest

from reel.config import Settings
from reel.engines.base import EngineConfigError
from reel.engines.upstream.health import Health, retry_after
from reel.engines.upstream.mapping import MappingError, check_templates, render, variables
from reel.engines.upstream.spec import parse_params
from reel.types import Mode
from tests.engines.upstream.conftest import request


def test_templates_keep_types_drop_missing_and_look_up(tmp_path: Path) -> None:
    values = variables(request(tmp_path), fps=16, image_url=None)
    templates = {
        "prompt": "{prompt}",
        "width": "{width}",
        "size": "{width}*{height}",
        "image_url": "{image_url}",
        "caption": "{prompt} ({image_url})",
        "aspect_ratio": {"from": "aspect", "map": {"landscape": "16:9", "portrait": "9:16"}},
        "frames": {"from": "duration", "map": {"5": 81}, "default": 161},
        "extra": {"steps": 4, "seed": "{seed}", "ref": "{image_url}"},
        "loras": [{"path": "x", "scale": 1}],
    }
    check_templates(templates)
    assert render(templates, values) == {
        "prompt": "a red fox in the snow",
        "width": 1280,
        "size": "1280*720",
        "aspect_ratio": "16:9",
        "frames": 161,
        "extra": {"steps": 4, "seed": 1234},
        "loras": [{"path": "x", "scale": 1}],
    }
    assert values["num_frames"] == 160 and values["seconds"] == "10"


def test_unmapped_values_and_unknown_placeholders_are_errors(tmp_path: Path) -> None:
    values = variables(request(tmp_path), fps=24, image_url=None)
    with pytest.raises(MappingError, match="no mapping for duration"):
        render({"n": {"from": "duration", "map": {"5": 1}}}, values)
    with pytest.raises(MappingError, match="unknown placeholder"):
        check_templates({"p": "{prompt} {nope}"})
    with pytest.raises(MappingError, match="lookup"):
        check_templates({"p": {"from": "nope", "map": {}}})


def test_params_shorthand_list_defaults_and_errors() -> None:
    one = parse_params({"endpoint": "fal-ai/wan/v2.2-a14b/text-to-video"}, default_kind="fal")
    fal = one.upstreams[0]
    assert fal.base_url == "https://queue.fal.run" and fal.auth_scheme == "Key"
    assert fal.endpoint_for(Mode.IMAGE_TO_VIDEO) == fal.endpoint
    many = parse_params(
        {
            "label": "wan",
            "upstreams": [
                {"kind": "openai_videos", "pool": ["http://gpu1:8000/", "http://gpu2:8000"]},
                {"kind": "replicate", "endpoint": "wan-video/wan-2.2-t2v-fast"},
            ],
        },
        default_kind=None,
    )
    assert many.label == "wan"
    assert many.upstreams[0].pool == ("http://gpu1:8000", "http://gpu2:8000")
    assert many.upstreams[0].image == "upload" and many.upstreams[1].image == "url"
    bad = [
        ({"endpoint": "x", "tiemout": 5}, "tiemout"),
        ({"kind": "fal"}, "needs endpoint"),
        ({"kind": "openai_videos"}, "needs base_url or pool"),
        ({"kind": "openai_videos", "base_url": "ftp://x"}, "not an http"),
        ({"kind": "fal", "endpoint": "x", "image": "upload"}, "OpenAI-compatible"),
        ({"kind": "fal", "endpoint": "x", "input": {"p": "{nope}"}}, "unknown placeholder"),
        ({"upstreams": [{"kind": "fal", "endpoint": "x"}] * 2}, "unique"),
        ({"upstreams": []}, "at least 1"),
    ]
    for params, message in bad:
        with pytest.raises(EngineConfigError, match=message):
            parse_params(params, default_kind=None)


def test_breaker_opens_cools_down_and_closes() -> None:
    now = [0.0]
    health = Health(failure_threshold=2, cooldown=10, clock=lambda: now[0])
    health.failure("s")
    assert health.available("s")
    health.failure("s")
    assert not health.available("s") and health.next_chance("s") == 10
    now[0] = 10.0
    assert health.available("s")  # half-open
    health.failure("s")
    assert not health.available("s") and health.next_chance("s") == 20
    now[0] = 20.0
    health.success("s")
    assert health.available("s")
    health.defer("s", 5)
    assert not health.available("s") and health.next_chance("s") == 25


def test_retry_after_forms() -> None:
    assert retry_after("7", default=1) == 7
    assert retry_after(None, default=3) == 3
    assert retry_after("soon", default=2) == 2
    later = formatdate(1_000_030, usegmt=True)
    assert retry_after(later, default=1, now=lambda: 1_000_000) == pytest.approx(30)


def test_credentials_come_from_named_env_vars_never_reel_settings(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_FAL_KEY", "sekrit")
    secret = settings.upstream_secret("MY_FAL_KEY")
    assert secret is not None and secret.get_secret_value() == "sekrit"
    assert "sekrit" not in repr(secret)
    assert settings.upstream_secret("UNSET_VARIABLE_FOR_TEST") is None
    monkeypatch.setenv("REEL_SECRET_KEY", "signing")
    for name in ("REEL_SECRET_KEY", "reel_database_url", ""):
        with pytest.raises(ValueError):
            settings.upstream_secret(name)


def test_config_errors_reach_users_only_as_a_fixed_sentence(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    from reel.engines.registry import load_engine

    with pytest.raises(EngineConfigError) as info:
        load_engine("fal", params={"endpoint": "x", "tiemout": 3}, settings=settings)
    assert info.value.message == "This model is not configured correctly"
    assert "tiemout" in caplog.text
    with pytest.raises(EngineConfigError):
        load_engine(
            "fal", params={"endpoint": "x", "credentials_env": "REEL_SECRET_KEY"}, settings=settings
        )
