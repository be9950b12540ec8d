"""Characters keep several reference frames and a create passes them all to the engine; a
character made when characters kept one frame still works; an uploaded source runs as the
``model`` its request names (the unmodified ``openai`` package sends it through ``extra_body``);
every refusal (length, name, count, a model without reference conditioning) charges nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from fastapi.testclient import TestClient
from openai.types import Video

from reel.api.app import create_app
from reel.db.models import Character, Task
from reel.engines.base import Capabilities
from reel.service import character_frames, extensions, keys
from reel.service.catalog import Catalog, ModelSpec, Offer
from reel.service.clock import now
from reel.service.context import Services
from reel.storage.naming import CHARACTER_FRAMES, MAX_REFERENCES, input_reference_key
from reel.types import Mode, Tier
from reel.worker import operations
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.test_openai_ops import balance, mp4, restricted
from tests.conftest import auth
from tests.factories import make_key
from tests.worker.recording import Recorder, plain_request

pytestmark = pytest.mark.filterwarnings("ignore:The Sora API:DeprecationWarning")
V1 = "/v1/videos"


@pytest.fixture
def backend() -> str:
    return "embedded"


@pytest.fixture
def issued(services: Services) -> keys.IssuedKey:
    return make_key(services, credits=1000)


@pytest.fixture
def sdk(client: TestClient, issued: keys.IssuedKey) -> Iterator[openai.OpenAI]:
    """The unmodified ``openai`` package, talking to the app in process."""
    with openai.OpenAI(
        api_key=issued.key, base_url="http://testserver/v1", http_client=client, max_retries=0
    ) as c:
        yield c


def references_given(services: Services, task_id: str, work: Path) -> list[bytes]:
    """The reference frames the worker hands the engine for ``task_id``, read back."""
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None
    engine = Recorder()  # records the request only: no video is needed here
    req = plain_request(task_id, task.prompt, work)
    caps = Capabilities(references=True)
    operations.generate(
        engine, task, req, lambda _s, _p: None, storage=services.storage, capabilities=lambda: caps
    )
    (call,) = engine.calls
    return [path.read_bytes() for path in call.reference_images]


def stored(services: Services, key: str, tmp_path: Path) -> bytes:
    path = tmp_path / "stored.bin"
    services.storage.get_to(key, path)
    return path.read_bytes()


def test_a_character_keeps_three_frames_and_a_create_passes_every_one(
    sdk: openai.OpenAI, services: Services, tmp_path: Path
) -> None:
    mara = sdk.videos.create_character(name="Mara", video=("m.mp4", mp4(tmp_path, 3), "video/mp4"))
    ivo = sdk.videos.create_character(name="Ivo", video=("i.mp4", mp4(tmp_path, 2), "video/mp4"))
    with services.db.read() as session:
        rows = {c.name: c for c in session.query(Character)}
    frames = {name: [stored(services, k, tmp_path) for k in rows[name].frame_keys] for name in rows}
    assert all(len(f) == CHARACTER_FRAMES for f in frames.values())
    assert len(set(frames["Mara"])) == CHARACTER_FRAMES  # spread over the clip, not one frame
    assert CHARACTER_FRAMES * 2 == MAX_REFERENCES

    video = sdk.videos.create(prompt="Ivo hands Mara a lantern", seconds="4")
    with services.db.read() as session:
        task = session.get(Task, video.id)
        assert task is not None
        assert task.extra["characters"] == [ivo.id, mara.id]  # prompt order
        assert task.extra["referenceFrames"] == 2 * CHARACTER_FRAMES
    # The task's own copies, then what the engine is given: each character's frames in turn.
    copies = [stored(services, input_reference_key(video.id, n), tmp_path) for n in range(6)]
    assert copies == frames["Ivo"] + frames["Mara"]
    assert references_given(services, video.id, tmp_path) == copies
    run_once(Runner(services))  # the sandbox takes all six
    assert sdk.videos.retrieve(video.id).status == "completed"

    # Deleting one: its frames leave storage; the task keeps its copies.
    sdk.delete(f"/videos/characters/{mara.id}", cast_to=object)
    assert not any(services.storage.exists(k) for k in rows["Mara"].frame_keys)
    assert services.storage.exists(input_reference_key(video.id, 5))


def test_a_one_frame_character_and_a_task_from_before_still_work(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    sdk_key = key.key
    frame = character_frames.from_video(mp4(tmp_path, 2))[0]
    legacy_key = "characters/char_legacy.png"  # the one-frame key, as revision 0007 keeps it
    services.storage.put_bytes(legacy_key, frame)
    with services.db.write() as session:
        session.add(
            Character(
                id="char_legacy",
                key_id=key.id,
                name="Old Tom",
                frame_keys=[legacy_key],
                created_at=now(),
            )
        )
    resp = client.post(V1, json={"prompt": "Old Tom fishes", "seconds": "4"}, headers=auth(sdk_key))
    assert resp.status_code == 200, resp.text
    task_id = resp.json()["id"]
    assert references_given(services, task_id, tmp_path) == [frame]
    # A task accepted before characters kept several frames says only which characters.
    with services.db.write() as session:
        task = session.get(Task, task_id)
        assert task is not None
        task.extra = {k: v for k, v in task.extra.items() if k != "referenceFrames"}
    assert references_given(services, task_id, tmp_path) == [frame]
    run_once(Runner(services))
    done = client.get(f"{V1}/{task_id}", headers=auth(sdk_key)).json()
    assert done["status"] == "completed", done
    deleted = client.delete(f"{V1}/characters/char_legacy", headers=auth(sdk_key))
    assert deleted.status_code == 200 and not services.storage.exists(legacy_key)


def test_uploads_run_as_the_model_they_name(
    sdk: openai.OpenAI, services: Services, issued: keys.IssuedKey, tmp_path: Path
) -> None:
    upload = ("clip.mp4", mp4(tmp_path, 2), "video/mp4")
    key_id = issued.id
    before = balance(services, key_id)
    ext = sdk.videos.extend(
        prompt="and then it snows", seconds="4", video=upload, extra_body={"model": "sora-2-pro"}
    )
    assert ext.model == "sora-2-pro" and ext.seconds == "6" and ext.size == "1280x720"
    assert balance(services, key_id) == before - 24  # 4 s at sora-2-pro, not 2 at sora-2
    edit = sdk.videos.edit(prompt="at dusk", video=upload, extra_body={"model": "sora-2-pro"})
    assert edit.model == "sora-2-pro" and edit.seconds == "2"
    assert balance(services, key_id) == before - 24 - 12  # 2 s at sora-2-pro, rounded up
    with services.db.read() as session:
        task = session.get(Task, ext.id)
        assert task is not None and task.tier == Tier.PRO_STANDARD
    plain = sdk.videos.edit(prompt="at noon", video=upload)  # no model: sora-2, as before
    assert plain.model == "sora-2" and balance(services, key_id) == before - 24 - 12 - 1
    run_once(Runner(services))
    assert sdk.videos.retrieve(ext.id).status == "completed"
    # Its extension is a reference: it runs as its source's model, and says so.
    again = sdk.post(
        "/videos/extensions",
        cast_to=Video,
        body={"prompt": "more", "seconds": "4", "video": {"id": ext.id}, "model": "sora-2-pro"},
    )
    assert again.model == "sora-2-pro" and again.seconds == "10"

    charged = balance(services, key_id)
    for model in ("sora-3", "sandbox"):  # unknown; a models-file model that is not public
        with pytest.raises(openai.BadRequestError) as refused:
            sdk.videos.extend(prompt="x", seconds="4", video=upload, extra_body={"model": model})
        body = refused.value.body
        assert isinstance(body, dict)
        assert body["param"] == "model" and body["code"] == "invalid_value"
        assert body["type"] == "invalid_request_error" and "sandbox" not in body["message"]
    with pytest.raises(openai.BadRequestError, match="its source's model"):
        sdk.post(
            "/videos/edits",
            cast_to=Video,
            body={"prompt": "x", "video": {"id": ext.id}, "model": "sora-2"},
        )
    assert balance(services, key_id) == charged  # refusals are free


def test_an_upload_may_name_a_public_model_of_the_models_file(
    services: Services, tmp_path: Path
) -> None:
    spec = ModelSpec("studio-x", "sandbox")
    catalog = services.catalog
    offered = Catalog(
        {**catalog.models, "studio-x": spec}, catalog.tiers, {"studio-x": Offer(price=None)}
    )
    key = make_key(services, credits=100)
    upload = {"video": ("clip.mp4", mp4(tmp_path, 2), "video/mp4")}
    with TestClient(
        create_app(services.settings, services=dataclasses.replace(services, catalog=offered))
    ) as c:
        resp = c.post(
            f"{V1}/extensions",
            data={"prompt": "on", "seconds": "4", "model": "studio-x"},
            files=upload,
            headers=auth(key.key),
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["model"] == "studio-x"
        with services.db.read() as session:
            task = session.get(Task, resp.json()["id"])
            assert task is not None and task.model == "studio-x"
        assert extensions.price(offered, "studio-x", Tier.SORA2, 4) == 2
        assert balance(services, key.id) == 98
    # The same name on a server that does not offer it: refused, nothing charged.
    with TestClient(create_app(services.settings, services=services)) as c:
        resp = c.post(
            f"{V1}/edits",
            data={"prompt": "on", "model": "studio-x"},
            files=upload,
            headers=auth(key.key),
        )
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "model"
    assert balance(services, key.id) == 98


def test_a_character_deleted_while_a_create_copies_its_frames_is_a_400_charging_nothing(
    sdk: openai.OpenAI, services: Services, issued: keys.IssuedKey, tmp_path: Path
) -> None:
    from reel.db.models import ApiKey
    from reel.service import characters, tasks
    from reel.service.errors import InvalidParameter
    from reel.types import Aspect

    mara = sdk.videos.create_character(name="Mara", video=("m.mp4", mp4(tmp_path, 3), "video/mp4"))
    before = balance(services, issued.id)
    with services.db.read() as session:
        row = session.get(ApiKey, issued.id)
        assert row is not None
    asked = tasks.NewTask(
        prompt="Mara waves",
        mode=Mode.TEXT_TO_VIDEO,
        tier=Tier.SORA2,
        aspect=Aspect.LANDSCAPE,
        duration_s=4,
        surface="openai",
        credits=4,
    )
    cmd = characters.named_in(services, row, asked)
    assert cmd.reference_keys
    sdk.delete(f"/videos/characters/{mara.id}", cast_to=object)  # between lookup and copy
    with pytest.raises(InvalidParameter, match="no longer stored"):
        tasks.create(services, row, cmd)
    assert balance(services, issued.id) == before
    with services.db.read() as session:
        assert session.query(Task).count() == 0


def test_character_refusals_are_free(
    client: TestClient, services: Services, tmp_path: Path
) -> None:
    key = make_key(services, credits=100)
    for seconds in (1, 5):  # a character's video is 2-4 s
        resp = client.post(
            f"{V1}/characters",
            data={"name": "Short"},
            files={"video": ("x.mp4", mp4(tmp_path, seconds), "video/mp4")},
            headers=auth(key.key),
        )
        assert resp.status_code == 400 and resp.json()["error"]["param"] == "video", resp.text
    for name in ("Ann", "Bo", "Cy"):
        resp = client.post(
            f"{V1}/characters",
            data={"name": name},
            files={"video": ("x.mp4", mp4(tmp_path, 2), "video/mp4")},
            headers=auth(key.key),
        )
        assert resp.status_code == 200, resp.text
    same = client.post(
        f"{V1}/characters",
        data={"name": "Ann"},
        files={"video": ("x.mp4", mp4(tmp_path, 2), "video/mp4")},
        headers=auth(key.key),
    )
    assert same.status_code == 400 and same.json()["error"]["param"] == "name"
    three = client.post(V1, json={"prompt": "Ann, Bo and Cy dance"}, headers=auth(key.key))
    assert three.status_code == 400 and "at most 2" in three.json()["error"]["message"]
    # A model that cannot condition on references.
    with TestClient(create_app(services.settings, services=restricted(services, "ltx"))) as c:
        resp = c.post(V1, json={"prompt": "Ann waves"}, headers=auth(key.key))
        assert resp.status_code == 400 and "characters" in resp.json()["error"]["message"]
        # No character named: the same model takes the create.
        assert (
            c.post(V1, json={"prompt": "Annabel waves"}, headers=auth(key.key)).status_code == 200
        )
    assert balance(services, key.id) == 98
