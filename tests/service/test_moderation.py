"""The content policy's checks on their own: blocklist matching and the moderation endpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reel.config import Settings
from reel.service import moderation
from reel.service.errors import ContentPolicyViolation, ModerationUnavailable
from tests.fakemoderation import FakeModeration, fake_moderation


@pytest.fixture
def blocklist(tmp_path: Path) -> Path:
    path = tmp_path / "blocklist.txt"
    path.write_text("# words and phrases\nheron\n  Blue   WHALE \n\nc++\n")
    return path


@pytest.mark.parametrize(
    ("prompt", "hit"),
    [
        ("a heron at dawn", True),
        ("A HERON at dawn", True),
        ("herons at dawn", False),  # whole words only
        ("a blue whale", True),
        ("a blue\n\t whale", True),  # whitespace-normalized
        ("a blue-whale", False),
        ("blue whales", False),
        ("ＨＥＲＯＮ", True),  # full-width letters fold to ASCII
        ("learning c++ fast", True),  # entries are literal text, not patterns
        ("learning c+", False),
        ("a bird at dawn", False),
    ],
)
def test_blocklist_matches_whole_words_and_phrases(blocklist: Path, prompt: str, hit: bool) -> None:
    assert moderation.blocked(prompt, blocklist) is hit


def test_blocklist_changes_are_picked_up(blocklist: Path) -> None:
    assert not moderation.blocked("a crane", blocklist)
    blocklist.write_text("crane\n")
    assert moderation.blocked("a crane", blocklist)


def _settings(tmp_path: Path, **fields: object) -> Settings:
    return Settings(data_dir=tmp_path, moderation_timeout=1.0, **fields)  # type: ignore[arg-type]


def _endpoint(fake: FakeModeration, tmp_path: Path, **fields: object) -> Settings:
    return _settings(
        tmp_path, moderation_url=fake.url, moderation_allow_hosts=("127.0.0.1",), **fields
    )


def test_off_unless_configured(tmp_path: Path) -> None:
    assert moderation.screen_prompt(_settings(tmp_path), "anything at all") is None
    assert moderation.screen_frames(_settings(tmp_path), [b"jpeg"]) is None


def test_blocklist_refuses_and_records_a_pass(tmp_path: Path, blocklist: Path) -> None:
    settings = _settings(tmp_path, moderation_blocklist=blocklist)
    with pytest.raises(ContentPolicyViolation):
        moderation.screen_prompt(settings, "a heron")
    verdict = moderation.screen_prompt(settings, "a crane")
    assert verdict is not None and verdict.record() == {
        "decision": "allowed",
        "checks": ["blocklist"],
    }


def test_endpoint_is_asked_in_the_openai_shape(tmp_path: Path) -> None:
    with fake_moderation() as fake:
        settings = _endpoint(
            fake, tmp_path, moderation_model="guard-1", moderation_api_key="sk-mod"
        )
        assert moderation.screen_prompt(settings, "a calm lake") is not None
        with pytest.raises(ContentPolicyViolation) as refused:
            moderation.screen_prompt(settings, "something forbidden")
    assert fake.requests == [
        {"input": "a calm lake", "model": "guard-1"},
        {"input": "something forbidden", "model": "guard-1"},
    ]
    assert fake.headers[0]["authorization"] == "Bearer sk-mod"
    assert "violence" not in refused.value.message  # the classifier's answer stays inside


def test_endpoint_on_a_private_address_needs_the_allow_list(tmp_path: Path) -> None:
    with fake_moderation() as fake:
        settings = _settings(tmp_path, moderation_url=fake.url)  # no allow-list
        with pytest.raises(ModerationUnavailable):
            moderation.screen_prompt(settings, "a calm lake")
    assert fake.requests == []  # the SSRF guard never connected


@pytest.mark.parametrize(
    "fault", [{"status": 503}, {"garbage": True}, {"delay": 1.5}], ids=["5xx", "garbage", "hung"]
)
def test_endpoint_down_follows_the_setting(tmp_path: Path, fault: dict[str, object]) -> None:
    with fake_moderation(**fault) as fake:
        started = time.monotonic()
        with pytest.raises(ModerationUnavailable):
            moderation.screen_prompt(_endpoint(fake, tmp_path), "a calm lake")
        assert time.monotonic() - started < 2.5  # the timeout (1 s) bounds the wait
        allowed = moderation.screen_prompt(
            _endpoint(fake, tmp_path, moderation_when_down="allow"), "a calm lake"
        )
    assert allowed is not None and allowed.record() == {
        "decision": "allowed",
        "checks": ["endpoint"],
        "reason": "endpoint_down",
    }


def test_frames_go_as_image_inputs_and_a_flag_is_a_refusal(tmp_path: Path) -> None:
    with fake_moderation(flag_images=True) as fake:
        settings = _settings(
            tmp_path, moderation_output_url=fake.url, moderation_allow_hosts=("127.0.0.1",)
        )
        verdict = moderation.screen_frames(settings, [b"\xff\xd8one", b"\xff\xd8two"])
    assert verdict is not None and not verdict.allowed
    assert verdict.record() == {
        "decision": "refused",
        "checks": ["endpoint"],
        "reason": "endpoint",
        "categories": ["sexual"],
    }
    [request] = fake.requests  # stopped at the first flagged frame
    [item] = request["input"]  # type: ignore[misc]
    assert item["type"] == "image_url"
    assert item["image_url"]["url"].startswith("data:image/jpeg;base64,")
