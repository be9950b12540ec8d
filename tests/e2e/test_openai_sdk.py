"""The official `openai` package, unmodified, against a real `reel serve` process."""

from __future__ import annotations

import io
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from openai.types import Video, VideoDeleteResponse
from PIL import Image

from reel.media.video import encode_frames, probe
from tests.e2e.server import ReelServer
from tests.imageserver import image_server, png_bytes

# Recent SDKs mark the Videos API as deprecated upstream; that is exactly why Reel serves it.
pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReelServer]:
    data = tmp_path_factory.mktemp("openai") / "data"
    with ReelServer(data, workers=2, REEL_RATE_LIMIT_STATUS="100000/minute") as srv:
        yield srv


@pytest.fixture(scope="module")
def key(server: ReelServer) -> dict[str, object]:
    return server.create_key(credits=1000, name="sdk")


@pytest.fixture
def client(server: ReelServer, key: dict[str, object]) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        api_key=str(key["key"]), base_url=f"{server.url}/v1", max_retries=0, timeout=60
    ) as c:
        yield c


def balance(server: ReelServer, key_id: object) -> int:
    with sqlite3.connect(server.data_dir / "reel.db") as db:
        row = db.execute(
            "SELECT a.balance FROM accounts a JOIN api_keys k ON k.account_id = a.id"
            " WHERE k.id = ?",
            (key_id,),
        ).fetchone()
        return int(row[0])


def test_create_and_poll_then_download_every_variant(
    client: openai.OpenAI, server: ReelServer, key: dict[str, object], tmp_path: Path
) -> None:
    before = balance(server, key["id"])
    video = client.videos.create_and_poll(
        model="sora-2", prompt="A paper boat on a stream", seconds="8", size="1280x720"
    )
    assert isinstance(video, Video)
    Video.model_validate(video.model_dump())  # strict check of the SDK's own model
    assert video.status == "completed", video
    assert video.progress == 100 and video.model == "sora-2"
    assert video.size == "1280x720" and video.seconds == "8"
    assert video.completed_at is not None and video.expires_at is not None
    assert video.expires_at > video.completed_at
    assert balance(server, key["id"]) == before - 4  # sora2, 8 s

    mp4 = tmp_path / "v.mp4"
    client.videos.download_content(video.id).write_to_file(mp4)
    info = probe(mp4)
    assert info.codec == "h264" and abs(info.duration_s - 8) < 0.3

    thumb = client.videos.download_content(video.id, variant="thumbnail")
    with Image.open(io.BytesIO(thumb.content)) as img:
        assert img.format == "WEBP"
    sprite = client.videos.download_content(video.id, variant="spritesheet")
    with Image.open(io.BytesIO(sprite.content)) as img:
        assert img.format == "JPEG"


def test_create_retrieve_and_pro_sizes(
    client: openai.OpenAI, server: ReelServer, key: dict[str, object]
) -> None:
    before = balance(server, key["id"])
    video = client.videos.create(
        model="sora-2-pro", prompt="A lighthouse at night", size="1024x1792", seconds="4"
    )
    assert video.status in ("queued", "in_progress") and video.progress >= 0
    assert balance(server, key["id"]) == before - 48  # sora2-pro-high, 4 s
    got = client.videos.retrieve(video.id)
    Video.model_validate(got.model_dump())
    assert got.id == video.id and got.prompt == "A lighthouse at night"
    done = client.videos.poll(video.id, poll_interval_ms=200)
    assert done.status == "completed" and done.size == "1024x1792"


def test_input_reference_upload_and_url(client: openai.OpenAI, server: ReelServer) -> None:
    buf = io.BytesIO(png_bytes(96, 64))
    uploaded = client.videos.create(
        prompt="The red card flutters", input_reference=("card.png", buf, "image/png")
    )
    with image_server({"/ref.png": (200, "image/png", png_bytes(80, 60))}) as base:
        # This SDK only uploads files through `input_reference=`; a URL reference goes in
        # the body, which it sends as the form field `input_reference[image_url]`.
        by_url = client.videos.create(
            prompt="The red card flutters",
            extra_body={"input_reference": {"image_url": f"{base}/ref.png"}},
        )
    for v in (uploaded, by_url):
        assert client.videos.poll(v.id, poll_interval_ms=200).status == "completed"
    with sqlite3.connect(server.data_dir / "reel.db") as db:
        rows = db.execute(
            "SELECT mode, image_key FROM tasks WHERE id IN (?, ?)", (uploaded.id, by_url.id)
        ).fetchall()
    assert [mode for mode, _ in rows] == ["imageToVideo", "imageToVideo"]
    assert all((server.data_dir / "media" / str(k)).is_file() for _, k in rows)
    with pytest.raises(openai.BadRequestError) as err:
        client.videos.create(prompt="x", input_reference=("bad.png", b"not an image", "image/png"))
    assert err.value.code == "invalid_value" and err.value.param == "input_reference"


def test_list_auto_paginates_in_both_orders(server: ReelServer) -> None:
    fresh = server.create_key(credits=100, name="lister")
    with openai.OpenAI(api_key=str(fresh["key"]), base_url=f"{server.url}/v1") as c:
        made = [c.videos.create(prompt=f"clip {i}").id for i in range(5)]
        newest_first = [v.id for v in c.videos.list(limit=2)]
        oldest_first = [v.id for v in c.videos.list(limit=2, order="asc")]
        page = c.videos.list(limit=2)
        assert page.has_more is True and len(page.data) == 2
    assert newest_first == made[::-1]
    assert oldest_first == made


def test_remix_continues_from_the_source(client: openai.OpenAI) -> None:
    source = client.videos.create_and_poll(prompt="A kite over a hill", seconds="4")
    remixed = client.videos.remix(source.id, prompt="The kite flies into a storm")
    assert remixed.remixed_from_video_id == source.id
    assert remixed.prompt == "The kite flies into a storm"
    assert remixed.seconds == source.seconds and remixed.size == source.size
    done = client.videos.poll(remixed.id, poll_interval_ms=200)
    assert done.status == "completed" and done.remixed_from_video_id == source.id


def test_delete_removes_files_and_hides_the_video(
    client: openai.OpenAI, server: ReelServer
) -> None:
    video = client.videos.create_and_poll(prompt="Gone soon")
    files = sorted((server.data_dir / "media" / "videos").glob(f"{video.id}-*"))
    assert len(files) == 3  # the MP4, its thumbnail and its spritesheet
    deleted = client.videos.delete(video.id)
    assert deleted.id == video.id
    assert not any(f.exists() for f in files)
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)
    with pytest.raises(openai.NotFoundError):
        client.videos.download_content(video.id)
    assert video.id not in [v.id for v in client.videos.list(limit=100)]


def test_delete_answer_is_openais_shape(server: ReelServer, key: dict[str, object]) -> None:
    with openai.OpenAI(api_key=str(key["key"]), base_url=f"{server.url}/v1") as c:
        video = c.videos.create(prompt="To be deleted while queued or running")
        raw = c.videos.with_raw_response.delete(video.id)
        assert raw.http_response.status_code == 200
        payload = raw.http_response.json()
        assert VideoDeleteResponse.model_validate(payload).deleted is True
        assert payload == {"id": video.id, "object": "video.deleted", "deleted": True}


def test_error_classes(server: ReelServer, client: openai.OpenAI) -> None:
    with (
        openai.OpenAI(api_key="sk-reel-wrong", base_url=f"{server.url}/v1", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError) as auth,
    ):
        bad.videos.list()
    assert auth.value.status_code == 401 and auth.value.code == "invalid_api_key"

    with pytest.raises(openai.NotFoundError) as missing:
        client.videos.retrieve("task_doesnotexist")
    assert missing.value.body["type"] == "invalid_request_error"  # type: ignore[index]

    with pytest.raises(openai.BadRequestError) as invalid:
        client.videos.create(prompt="x", seconds="10")  # type: ignore[arg-type]
    assert invalid.value.param == "seconds"

    poor = server.create_key(credits=1, name="poor")
    # Default retries on: the SDK must not retry insufficient_quota (x-should-retry: false).
    with (
        openai.OpenAI(api_key=str(poor["key"]), base_url=f"{server.url}/v1", max_retries=2) as c,
        pytest.raises(openai.RateLimitError) as quota,
    ):
        raw = c.videos.with_raw_response
        raw.create(prompt="too expensive")
    assert quota.value.status_code == 429 and quota.value.code == "insufficient_quota"
    assert quota.value.type == "insufficient_quota"
    assert quota.value.response.headers["x-should-retry"] == "false"
    assert server.log().count('"POST /v1/videos HTTP/1.1" 429') == 1  # asked once, not retried


def test_rate_limit_is_a_rate_limit_error(tmp_path: Path) -> None:
    with ReelServer(tmp_path / "data", workers=0, REEL_RATE_LIMIT_STATUS="2/minute") as srv:
        key = srv.create_key(credits=10)
        with openai.OpenAI(api_key=str(key["key"]), base_url=f"{srv.url}/v1", max_retries=0) as c:
            c.videos.list()
            c.videos.list()
            with pytest.raises(openai.RateLimitError) as limited:
                c.videos.list()
    assert limited.value.code == "rate_limit_exceeded"
    assert int(limited.value.response.headers["retry-after"]) > 0


def test_extend_edit_and_characters(
    client: openai.OpenAI, server: ReelServer, key: dict[str, object], tmp_path: Path
) -> None:
    source = tmp_path / "upload.mp4"
    frames = [np.full((36, 64, 3), 15 * i, dtype=np.uint8) for i in range(16)]  # 2 s at 8 fps
    encode_frames(frames, source, fps=8)
    before = balance(server, key["id"])
    # Uploads go through the package's own methods (multipart).
    extended = client.videos.extend(prompt="the light returns", seconds="4", video=source)
    extended = client.videos.poll(extended.id, poll_interval_ms=200)
    assert extended.status == "completed" and extended.seconds == "6", extended
    edited = client.videos.edit(prompt="in winter", video=source)
    assert client.videos.poll(edited.id, poll_interval_ms=200).seconds == "2"
    # A reference by id goes as JSON through the package's generic post.
    again = client.post(
        "/videos/extensions",
        cast_to=Video,
        body={"prompt": "and night", "seconds": "4", "video": {"id": extended.id}},
    )
    again = client.videos.poll(again.id, poll_interval_ms=200)
    assert again.status == "completed" and again.seconds == "10"
    client.videos.download_content(again.id).write_to_file(tmp_path / "again.mp4")
    assert abs(probe(tmp_path / "again.mp4").duration_s - 10) < 0.3
    assert balance(server, key["id"]) == before - 2 - 1 - 2  # 4 s, a 2 s edit, 4 s

    character = client.videos.create_character(name="Ines", video=source)
    assert client.videos.get_character(str(character.id)).name == "Ines"
    with_her = client.videos.create_and_poll(
        prompt="Ines opens the window", seconds="4", poll_interval_ms=200
    )
    assert with_her.status == "completed"
