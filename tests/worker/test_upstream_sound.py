"""Upstream results keep their audio when Reel stores them; sound is asked for where configured."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reel.engines.upstream.spec import parse_params
from reel.media.video import probe, read_audio
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.fakeupstreams import FakeVideos, parse_multipart
from tests.worker.test_upstream_service import CASES, mp4, stack_for, vid_params

__all__ = ["mp4", "stack_for"]  # fixtures


def assert_stored_sound(data: bytes, tmp_path: Path) -> None:
    path = tmp_path / "stored.mp4"
    path.write_bytes(data)
    info, audio = probe(path), read_audio(path)
    assert info.audio is not None and audio is not None
    assert info.audio.duration_s == pytest.approx(info.duration_s, abs=1 / info.fps)
    assert audio.peak > 0.1


@pytest.mark.parametrize("engine", sorted(CASES))
def test_stored_upstream_video_keeps_its_audio(  # type: ignore[no-untyped-def]
    stack_for, mp4: bytes, engine: str, tmp_path: Path
) -> None:
    fake_cls, params = CASES[engine]
    with fake_cls(mp4) as fake:
        stack = stack_for(engine, params(fake))
        task_id = stack.generate()
        assert run_once(Runner(stack.services))
        body = stack.status(task_id)
        assert body["status"] == "completed", body
        video = stack.client.get(str(body["videoUrl"]))
        assert_stored_sound(video.content, tmp_path)
        assert stack.row(task_id).extra["upstream"]["audio"] is True  # type: ignore[index]


def test_openai_compatible_server_is_asked_for_sound(  # type: ignore[no-untyped-def]
    stack_for, mp4: bytes, tmp_path: Path
) -> None:
    with FakeVideos(mp4) as fake:
        stack = stack_for("openai_videos", {**vid_params(fake), "sound": True})
        task_id = stack.generate()
        assert run_once(Runner(stack.services))
        assert stack.status(task_id)["status"] == "completed"
        create = fake.calls("submit")[0]
        fields, _ = parse_multipart(create.headers["content-type"], create.body)
        assert fields["generate_sound"] == "true"
        assert fields["prompt"] == "a heron at dawn"


def test_sound_is_off_unless_configured_and_its_field_can_be_renamed() -> None:
    def spec(**extra: object):  # type: ignore[no-untyped-def]
        return parse_params({"base_url": "http://x", **extra}, default_kind="openai_videos")

    assert "generate_sound" not in spec().upstreams[0].input
    assert spec(sound=True).upstreams[0].input["generate_sound"] is True
    custom = spec(sound=True, sound_field="audio", input={"prompt": "{prompt}"}).upstreams[0]
    assert custom.input == {"prompt": "{prompt}", "audio": True}
    fal = parse_params(
        {"base_url": "http://x", "endpoint": "fal-ai/ltx-2", "sound": True}, default_kind="fal"
    ).upstreams[0]
    assert fal.input["generate_audio"] is True


def test_the_fakes_deliver_a_tone(mp4: bytes, tmp_path: Path) -> None:
    path = tmp_path / "fake.mp4"
    path.write_bytes(mp4)
    audio = read_audio(path)
    assert audio is not None
    spectrum = np.abs(np.fft.rfft(audio.samples[0]))
    assert np.argmax(spectrum) * audio.rate / audio.samples.shape[1] == pytest.approx(440, abs=5)
