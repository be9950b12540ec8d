"""/v1/videos/extensions, /edits and /characters in process: plain HTTP for references, the
unmodified ``openai`` package for uploads."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient
from openai.types import Video
from PIL import Image as PILImage
from PIL import ImageOps
from typer.testing import CliRunner

from reel.api.app import create_app
from reel.api.middleware import body_limits
from reel.cli import generate
from reel.cli.app import app
from reel.client import Client
from reel.config import Settings
from reel.db.models import Task
from reel.media.clips import UPLOAD_MAX_BYTES
from reel.media.video import encode_frames, frame_at, probe
from reel.service import admin, extensions, ledger
from reel.service.catalog import Catalog
from reel.service.context import Services
from reel.service.errors import InvalidParameter
from reel.service.sources import Source
from reel.storage.naming import character_frame_key, input_video_key
from reel.types import Tier
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.console.conftest import TOKEN, sign_in
from tests.conftest import auth, with_settings
from tests.factories import make_key

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
V1 = "/v1/videos"


@pytest.fixture
def backend() -> str:
    return "embedded"


def balance(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        return ledger.history(session, key_id, limit=1)[0].balance_after


def completed(client: TestClient, services: Services, key: str, body: dict[str, object]) -> dict:
    resp = client.post(V1 + body.pop("_path", ""), json=body, headers=auth(key))
    assert resp.status_code == 200, resp.text
    run_once(Runner(services))
    video = client.get(f"{V1}/{resp.json()['id']}", headers=auth(key)).json()
    assert video["status"] == "completed", video
    return video  # type: ignore[no-any-return]


def content(client: TestClient, key: str, video_id: str, tmp_path: Path) -> Path:
    resp = client.get(f"{V1}/{video_id}/content", headers=auth(key))
    assert resp.status_code == 200
    path = tmp_path / f"{video_id}.mp4"
    path.write_bytes(resp.content)
    return path


def test_extension_by_reference_appends_and_charges_the_new_seconds(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a red kite", "seconds": "4"})
    before = balance(services, key.id)
    resp = client.post(
        f"{V1}/extensions",
        json={"prompt": "the kite climbs", "seconds": "8", "video": {"id": source["id"]}},
        headers=auth(key.key),
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["seconds"] == "12" and resp.json()["size"] == source["size"]
    assert balance(services, key.id) == before - 4  # 8 new seconds at sora-2
    run_once(Runner(services))
    done = client.get(f"{V1}/{resp.json()['id']}", headers=auth(key.key)).json()
    assert done["status"] == "completed", done
    src = probe(content(client, key.key, source["id"], tmp_path))
    out = probe(content(client, key.key, done["id"], tmp_path))
    assert abs(out.duration_s - (src.duration_s + 8)) < 0.3
    assert (out.width, out.height) == (src.width, src.height) and out.has_audio
    # A remix of the extension is sold as a video of its whole length, not of its segment.
    before = balance(services, key.id)
    remix = client.post(f"{V1}/{done['id']}/remix", json={"prompt": "again"}, headers=auth(key.key))
    assert remix.status_code == 200 and remix.json()["seconds"] == "12"
    assert balance(services, key.id) == before - 6


def mp4(tmp_path: Path, seconds: float, *, size: tuple[int, int] = (64, 36), fps: int = 8) -> bytes:
    """A small upload: a moving gradient, no sound."""
    w, h = size
    xs = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    frames = [
        np.broadcast_to((xs + i * 9) % 256, (h, w, 3)).astype(np.uint8).copy()
        for i in range(round(seconds * fps))
    ]
    path = tmp_path / f"upload-{seconds}.mp4"
    encode_frames(frames, path, fps=fps)
    return path.read_bytes()


@pytest.fixture
def sdk(client: TestClient, api_key: str) -> Iterator[openai.OpenAI]:
    """The unmodified ``openai`` package, talking to the app in process."""
    with openai.OpenAI(
        api_key=api_key, base_url="http://testserver/v1", http_client=client, max_retries=0
    ) as c:
        yield c


def restricted(services: Services, engine: str) -> Services:
    """The same services, with every tier served by a model of ``engine`` (never loaded)."""
    models = {n: replace(m, engine=engine) for n, m in services.catalog.models.items()}
    return replace(services, catalog=Catalog(models, services.catalog.tiers))


def test_sdk_uploads_extend_and_edit(
    sdk: openai.OpenAI, client: TestClient, services: Services, api_key: str, tmp_path: Path
) -> None:
    upload = ("clip.mp4", mp4(tmp_path, 2), "video/mp4")
    extended = sdk.videos.extend(prompt="and then it rains", seconds="4", video=upload)
    assert extended.seconds == "6" and extended.size == "1280x720" and extended.model == "sora-2"
    edited = sdk.videos.edit(prompt="in winter", video=upload)
    assert edited.seconds == "2" and edited.size == "1280x720"
    run_once(Runner(services))
    run_once(Runner(services))
    for video, seconds in ((extended, 6), (edited, 2)):
        done = sdk.videos.retrieve(video.id)
        assert done.status == "completed", done
        info = probe(content(client, api_key, video.id, tmp_path))
        assert abs(info.duration_s - seconds) < 0.3
    # A reference by id: the package raises before sending a dict as a file, so it goes as
    # JSON through its generic post (docs/openai.md).
    with pytest.raises(RuntimeError, match="Expected entry at `video`"):
        sdk.videos.extend(prompt="x", seconds="4", video={"id": extended.id})  # type: ignore[arg-type]
    again = sdk.post(
        "/videos/extensions",
        cast_to=Video,
        body={"prompt": "the rain stops", "seconds": "4", "video": {"id": extended.id}},
    )
    assert again.seconds == "10" and again.size == "1280x720"


def test_refusals_are_free(client: TestClient, services: Services, tmp_path: Path) -> None:
    key = make_key(services, credits=100)
    other = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a quiet pond", "seconds": "4"})
    before = balance(services, key.id)
    ext = f"{V1}/extensions"
    cases = [
        (other.key, ext, {"prompt": "p", "seconds": "4", "video": {"id": source["id"]}}, 404),
        (other.key, f"{V1}/edits", {"prompt": "p", "video": {"id": source["id"]}}, 404),
        (key.key, ext, {"prompt": "p", "seconds": "5", "video": {"id": source["id"]}}, 400),
        (key.key, ext, {"prompt": "p", "seconds": "4"}, 400),
        (key.key, ext, {"prompt": "p", "seconds": "4", "video": {"id": "video_nope"}}, 404),
    ]
    for who, path, body, status in cases:
        resp = client.post(path, json=body, headers=auth(who))
        assert resp.status_code == status, (body, resp.text)
    bad = client.post(
        ext,
        data={"prompt": "p", "seconds": "4"},
        files={"video": ("x.mp4", b"not a video", "video/mp4")},
        headers=auth(key.key),
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "video"
    # A model whose engine cannot extend or edit: refused before anything is charged.
    upstream = restricted(services, "fal")
    with TestClient(create_app(services.settings, services=upstream)) as c:
        for path, body in (
            ("/extensions", {"prompt": "p", "seconds": "4", "video": {"id": source["id"]}}),
            ("/edits", {"prompt": "p", "video": {"id": source["id"]}}),
        ):
            resp = c.post(V1 + path, json=body, headers=auth(key.key))
            assert resp.status_code == 400 and "cannot" in resp.json()["error"]["message"]
    assert balance(services, key.id) == before
    assert balance(services, other.id) == 100


def test_chains_stop_at_six_extensions(client: TestClient, services: Services) -> None:
    key = make_key(services, credits=100)
    video = completed(client, services, key.key, {"prompt": "a long road", "seconds": "4"})
    for n in range(6):
        body = {"_path": "/extensions", "prompt": f"mile {n}", "seconds": "4"}
        video = completed(client, services, key.key, {**body, "video": {"id": video["id"]}})
    assert video["seconds"] == "28"
    before = balance(services, key.id)
    seventh = client.post(
        f"{V1}/extensions",
        json={"prompt": "more", "seconds": "4", "video": {"id": video["id"]}},
        headers=auth(key.key),
    )
    assert seventh.status_code == 400 and "at most 6" in seventh.json()["error"]["message"]
    assert balance(services, key.id) == before


def test_chains_stop_at_120_seconds(services: Services, tmp_path: Path) -> None:
    path = tmp_path / "source.mp4"
    path.write_bytes(mp4(tmp_path, 1))
    source = Source(path, 112, 1280, 720, Tier.SORA2, None, "sora-2", None)
    with pytest.raises(InvalidParameter, match="at most 120 s"):
        extensions.extension_command(services, source, "on", 12)
    cmd = extensions.extension_command(services, source, "on", 8)
    assert cmd.duration_s == 120 and cmd.credits == 4 and cmd.size == (1280, 720)
    for seconds, credits in ((16, 8), (20, 10)):  # per 4 s at the source's tier
        assert extensions.price(services.catalog, None, Tier.SORA2, seconds) == credits


def test_edit_keeps_length_and_size_and_changes_the_picture(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a green field", "seconds": "8"})
    before = balance(services, key.id)
    edited = completed(
        client,
        services,
        key.key,
        {"_path": "/edits", "prompt": "at night", "video": {"id": source["id"]}},
    )
    assert edited["seconds"] == "8" and edited["size"] == source["size"]
    assert balance(services, key.id) == before - 4  # priced as a create of 8 s
    src = content(client, key.key, source["id"], tmp_path)
    out = content(client, key.key, edited["id"], tmp_path)
    a, b = probe(src), probe(out)
    assert (a.width, a.height) == (b.width, b.height) and abs(a.duration_s - b.duration_s) < 0.3
    first_src = frame_at(src, 1.0).astype(np.int16)
    first_out = frame_at(out, 1.0).astype(np.int16)
    rotated = first_src[..., [2, 0, 1]]
    assert np.abs(first_out - rotated).mean() < np.abs(first_out - first_src).mean()


def test_characters_are_created_read_used_and_kept_per_key(
    sdk: openai.OpenAI, client: TestClient, services: Services, api_key: str, tmp_path: Path
) -> None:
    made = sdk.videos.create_character(
        name="Mara", video=("mara.mp4", mp4(tmp_path, 3), "video/mp4")
    )
    assert made.id and made.id.startswith("char_") and made.name == "Mara" and made.created_at
    assert sdk.videos.get_character(made.id).name == "Mara"
    listed = client.get(f"{V1}/characters", headers=auth(api_key)).json()
    assert listed["object"] == "list" and [c["id"] for c in listed["data"]] == [made.id]
    stranger = make_key(services, credits=100)
    assert client.get(f"{V1}/characters/{made.id}", headers=auth(stranger.key)).status_code == 404
    assert (
        client.delete(f"{V1}/characters/{made.id}", headers=auth(stranger.key)).status_code == 404
    )
    assert client.get(f"{V1}/characters", headers=auth(stranger.key)).json()["data"] == []

    # Named verbatim in a prompt: the task gets the reference frame; the sandbox shows it.
    video = sdk.videos.create(prompt="Mara walks along the shore", seconds="4")
    with services.db.read() as session:
        task = session.get(Task, video.id)
        assert task is not None and task.extra["characters"] == [made.id]
    run_once(Runner(services))
    assert sdk.videos.retrieve(video.id).status == "completed"
    ref = tmp_path / "ref.png"
    services.storage.get_to(character_frame_key(made.id, 0), ref)
    frame = frame_at(content(client, api_key, video.id, tmp_path), 0.5).astype(np.int16)
    side = min(frame.shape[:2]) // 4
    with PILImage.open(ref) as image:
        inset = np.asarray(ImageOps.fit(image.convert("RGB"), (side, side)), dtype=np.int16)
    margin = max(1, side // 8)
    shown = frame[margin : margin + side, margin : margin + side]
    # The reference frame, in the corner (H.264 blurs a small inset: compared with the same
    # frame turned half round rather than with an exact threshold).
    near = np.abs(shown - inset).mean()
    assert near < 40 and near < 0.6 * np.abs(shown - inset[::-1, ::-1]).mean()
    # Another key's prompt naming "Mara" uses nothing of this key's.
    other = client.post(V1, json={"prompt": "Mara sleeps"}, headers=auth(stranger.key)).json()
    with services.db.read() as session:
        task = session.get(Task, other["id"])
        assert task is not None and "characters" not in task.extra

    deleted = client.delete(f"{V1}/characters/{made.id}", headers=auth(api_key)).json()
    assert deleted == {"id": made.id, "object": "character.deleted", "deleted": True}
    assert client.get(f"{V1}/characters/{made.id}", headers=auth(api_key)).status_code == 404


class Through(httpx.BaseTransport):
    """An httpx transport that hands each request to the in-process app's TestClient."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        resp = self.client.request(
            request.method, str(request.url), headers=request.headers, content=request.read()
        )
        headers = {k: v for k, v in resp.headers.items() if k not in ("content-encoding",)}
        return httpx.Response(resp.status_code, headers=headers, content=resp.content)


def test_python_client_and_cli_extend(
    client: TestClient, services: Services, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a drifting cloud", "seconds": "4"})

    def reel_client(server: str | None, api_key: str | None) -> Client:
        # In process: the app's own transport; each poll's wait runs the worker once.
        return Client(
            "http://testserver",
            api_key,
            transport=Through(client),
            sleep=lambda _: run_once(Runner(services)),
        )

    with reel_client(None, key.key) as reel:
        submitted = reel.extend(source["id"], "it rains", seconds=8)
        assert submitted.raw["seconds"] == "12"
        done = reel.wait(submitted.task_id, poll_interval=0.01)
        assert done.status == "completed" and done.credits_used == 4

    monkeypatch.setattr(generate, "Client", reel_client)
    target = tmp_path / "cli.mp4"
    result = CliRunner().invoke(
        app,
        ["extend", submitted.task_id, "then the sun", "--seconds", "4", "--out", str(target)],
        env={"REEL_API_KEY": key.key},
    )
    assert result.exit_code == 0, result.output
    assert abs(probe(target).duration_s - 16) < 0.3
    refused = CliRunner().invoke(
        app, ["extend", "task_nope", "x", "--seconds", "4"], env={"REEL_API_KEY": key.key}
    )
    assert refused.exit_code != 0


def test_extensions_replay_cancel_preview_and_purge_like_any_video(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a lighthouse", "seconds": "4"})
    before = balance(services, key.id)
    body = {"prompt": "night falls", "seconds": "4", "video": {"id": source["id"]}}
    headers = {**auth(key.key), "Idempotency-Key": "ext-1"}
    first = client.post(f"{V1}/extensions", json=body, headers=headers)
    again = client.post(f"{V1}/extensions", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert balance(services, key.id) == before - 2  # one charge
    canceled = client.post(f"{V1}/{first.json()['id']}/cancel", headers=auth(key.key)).json()
    assert canceled["status"] == "failed" and canceled["error"]["code"] == "canceled"
    assert balance(services, key.id) == before  # refunded

    edit = completed(
        client,
        services,
        key.key,
        {"_path": "/edits", "prompt": "in fog", "video": {"id": source["id"]}},
    )
    thumb = client.get(f"{V1}/{edit['id']}/content?variant=thumbnail", headers=auth(key.key))
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/webp"
    stored = input_video_key(edit["id"])
    assert services.storage.exists(stored)
    assert client.delete(f"{V1}/{edit['id']}", headers=auth(key.key)).status_code == 200
    assert not services.storage.exists(stored)  # its source copy goes with its files


def test_an_operators_retry_of_a_failed_extension_repeats_it(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a red door", "seconds": "4"})
    body = {"prompt": "it opens", "seconds": "4", "video": {"id": source["id"]}}
    failing = client.post(f"{V1}/extensions", json=body, headers=auth(key.key)).json()
    run_once(Runner(with_settings(services, sandbox_fail_rate=1.0)))
    assert client.get(f"{V1}/{failing['id']}", headers=auth(key.key)).json()["status"] == "failed"
    retried = admin.retry(services, failing["id"])
    assert services.storage.exists(input_video_key(retried.id))
    run_once(Runner(services))
    done = client.get(f"{V1}/{retried.id}", headers=auth(key.key)).json()
    assert done["status"] == "completed" and done["seconds"] == "8"
    assert abs(probe(content(client, key.key, retried.id, tmp_path)).duration_s - 8) < 0.3


def test_video_uploads_have_their_own_body_cap(settings: Settings) -> None:
    limit_for = body_limits(settings)
    for path in ("/v1/videos/extensions", "/v1/videos/edits", "/v1/videos/characters"):
        assert limit_for("POST", path) == settings.max_body_bytes + UPLOAD_MAX_BYTES
    assert limit_for("POST", "/v1/videos") == settings.max_body_bytes + settings.image_max_bytes
    assert limit_for("GET", "/v1/videos/characters") == settings.max_body_bytes


def test_an_upload_over_the_cap_is_refused_before_it_is_read(
    client: TestClient, services: Services, api_key: str
) -> None:
    too_big = services.settings.max_body_bytes + UPLOAD_MAX_BYTES + 1
    resp = client.post(
        f"{V1}/edits",
        content=b"x" * 16,
        headers={
            **auth(api_key),
            "Content-Type": "multipart/form-data; boundary=b",
            "Content-Length": str(too_big),
        },
    )
    assert resp.status_code == 413 and resp.json()["error"]["param"] == "body"


def test_the_admin_console_shows_what_a_task_extends(
    client: TestClient, services: Services
) -> None:
    key = make_key(services, credits=100)
    source = completed(client, services, key.key, {"prompt": "a kite", "seconds": "4"})
    body = {"prompt": "higher", "seconds": "8", "video": {"id": source["id"]}}
    ext = client.post(f"{V1}/extensions", json=body, headers=auth(key.key)).json()
    admin_services = with_settings(services, admin_token=TOKEN)
    with TestClient(create_app(admin_services.settings, services=admin_services)) as c:
        page = sign_in(c).get(f"/admin/tasks/{ext['id']}")
    assert page.status_code == 200
    assert "extension of" in page.text and f"/admin/tasks/{source['id']}" in page.text
    assert "+8 s, extension 1 of its chain" in page.text
