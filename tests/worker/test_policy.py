"""Provenance and policy through the whole service: C2PA-signed videos on both surfaces and from
an upstream, prompts refused without charge, and videos refused after generation refunded once."""

from __future__ import annotations

import dataclasses
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import func, select

from reel.api.app import create_app
from reel.db.models import ApiKey, LedgerEntry, Task
from reel.media.provenance import TRAINED_ALGORITHMIC_MEDIA, read_manifest
from reel.media.video import probe
from reel.service.catalog import load_catalog
from reel.service.context import Services
from reel.storage import naming
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.console.conftest import TOKEN, sign_in
from tests.api.test_openai_contract import fetch_content
from tests.certs import Chain, make_chain
from tests.conftest import auth, with_settings
from tests.factories import make_key
from tests.fakemoderation import fake_moderation
from tests.fakeupstreams import FakeFal, tiny_mp4
from tests.media.clips import streams
from tests.worker.test_upstream_service import fal_params, models_file

#: For checks that do not depend on where state lives (the rest run on both backends).
EMBEDDED_ONLY = pytest.mark.parametrize("backend", ["embedded"])
SEED = "/api/sora-2"
V1 = "/v1/videos"


@pytest.fixture(scope="module")
def chain() -> Chain:
    return make_chain()


@dataclasses.dataclass
class Stack:
    services: Services
    client: TestClient
    key: str
    key_id: str

    def seed(self, prompt: str = "a heron at dawn", **body: object) -> TestClient:
        return self.client.post(  # type: ignore[return-value]
            f"{SEED}/generate",
            json={"prompt": prompt, "mode": "textToVideo", "modelTier": "sora2", **body},
            headers=auth(self.key),
        )

    def v1(self, prompt: str = "a heron at dawn") -> TestClient:
        return self.client.post(V1, json={"prompt": prompt}, headers=auth(self.key))  # type: ignore[return-value]

    def balance(self) -> int:
        with self.services.db.read() as session:
            return int(session.scalar(select(ApiKey.balance).where(ApiKey.id == self.key_id)) or 0)

    def row(self, task_id: str) -> Task:
        with self.services.db.read() as session:
            task = session.get(Task, task_id)
            assert task is not None
            return task

    def ledger(self, task_id: str) -> list[str]:
        with self.services.db.read() as session:
            return sorted(
                session.scalars(select(LedgerEntry.kind).where(LedgerEntry.task_id == task_id))
            )

    def tasks(self) -> int:
        with self.services.db.read() as session:
            return int(session.scalar(select(func.count()).select_from(Task)) or 0)

    def stored(self, task_id: str, folder: Path) -> Path:
        task = self.row(task_id)
        assert task.video_key
        local = folder / f"{task_id}.mp4"
        self.services.storage.get_to(task.video_key, local)
        return local


@pytest.fixture
def stack_with(services: Services) -> Iterator[object]:
    opened: list[TestClient] = []

    def make(**changes: object) -> Stack:
        changed = with_settings(services, **changes)
        client = TestClient(create_app(changed.settings, services=changed)).__enter__()
        opened.append(client)
        issued = make_key(services, credits=1000)
        return Stack(changed, client, issued.key, issued.id)

    yield make
    for client in opened:
        client.__exit__(None, None, None)


def signing(chain: Chain, folder: Path) -> dict[str, object]:
    cert, key = chain.write(folder)
    return {"c2pa_cert": str(cert), "c2pa_key": str(key)}


# --- C2PA ------------------------------------------------------------------------------------


def test_videos_of_both_surfaces_are_signed_and_still_play(
    stack_with, chain: Chain, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_with(**signing(chain, tmp_path))
    seed_id = stack.seed().json()["taskId"]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "blue").save(buffer, format="PNG")
    v1 = stack.client.post(
        V1,
        data={"prompt": "the card flutters"},
        files={"input_reference": ("card.png", buffer.getvalue(), "image/png")},
        headers=auth(stack.key),
    )
    assert v1.status_code == 200, v1.text
    assert run_once(Runner(stack.services)) and run_once(Runner(stack.services))
    seed_file = stack.stored(seed_id, tmp_path)
    content = fetch_content(stack.client, f"{V1}/{v1.json()['id']}/content", auth(stack.key))
    assert content.status_code == 200
    v1_file = tmp_path / "v1.mp4"
    v1_file.write_bytes(content.content)
    for path, ingredients in ((seed_file, []), (v1_file, ["start.png"])):
        counts = streams(path)  # every frame of both tracks still decodes
        assert counts["video"] == probe(path).frames and counts["audio"] > 0
        summary = read_manifest(path, trust_anchors_pem=chain.root_pem)
        assert summary is not None and summary.validation_state == "Trusted", summary
        [created] = summary.actions
        assert created["action"] == "c2pa.created"
        assert created["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
        assert created["softwareAgent"]["name"] == "Reel, model sandbox"  # type: ignore[index]
        assert summary.ingredients == ingredients
        untrusted = read_manifest(path)  # what a verifier without our root sees
        assert untrusted is not None and untrusted.validation_state == "Valid"
        assert untrusted.status_codes == ["signingCredential.untrusted"]
    assert stack.row(seed_id).extra["provenance"] == {"c2pa": "signed", "alg": "es256"}
    status = stack.client.post(
        f"{SEED}/check-status", json={"taskId": seed_id}, headers=auth(stack.key)
    )
    assert "provenance" not in status.text and "es256" not in status.text  # operator-only


@EMBEDDED_ONLY
def test_unconfigured_signing_says_so_once_and_delivers_plain_videos(
    stack_with, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_with()
    task_id = stack.seed().json()["taskId"]
    with caplog.at_level(logging.INFO, logger="reel.worker"):
        runner = Runner(stack.services)
    assert [r.message for r in caplog.records if "C2PA" in r.message] == [
        "C2PA signing is off (REEL_C2PA_CERT and REEL_C2PA_KEY are not set): "
        "videos are delivered without a provenance manifest"
    ]
    assert run_once(runner)
    assert read_manifest(stack.stored(task_id, tmp_path)) is None


@EMBEDDED_ONLY
def test_a_mark_is_burned_in_before_the_signature(stack_with, chain: Chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    stack: Stack = stack_with(**signing(chain, tmp_path), mark_text="AI", mark_size=0.3)
    plain: Stack = stack_with()
    marked_id, plain_id = stack.seed().json()["taskId"], plain.seed().json()["taskId"]
    assert run_once(Runner(stack.services)) and run_once(Runner(plain.services))
    marked = stack.stored(marked_id, tmp_path)
    summary = read_manifest(marked, trust_anchors_pem=chain.root_pem)
    assert summary is not None and summary.validation_state == "Trusted"  # signed last
    unmarked = probe(stack.stored(plain_id, tmp_path))
    assert probe(marked).frames == unmarked.frames and unmarked.has_audio
    assert probe(marked).audio == unmarked.audio  # the sound track is copied as it was


# --- moderation before generation ------------------------------------------------------------


@EMBEDDED_ONLY
def test_blocklisted_prompts_are_refused_on_both_surfaces_for_free(
    stack_with, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    blocklist = tmp_path / "blocklist.txt"
    blocklist.write_text("heron\nblue whale\n")
    stack: Stack = stack_with(moderation_blocklist=str(blocklist))
    before = stack.balance()
    seed = stack.seed("A  Heron at dawn")
    assert seed.status_code == 400
    assert seed.json()["errorCode"] == "CONTENT_POLICY_VIOLATION" and not seed.json()["success"]
    v1 = stack.v1("a BLUE\nwhale")
    assert v1.status_code == 400
    assert v1.json()["error"]["code"] == "moderation_blocked"
    assert v1.json()["error"]["type"] == "invalid_request_error"
    assert stack.balance() == before and stack.tasks() == 0
    ok = stack.seed("herons at dawn")  # whole words only
    assert ok.status_code == 200, ok.text
    record = stack.row(ok.json()["taskId"]).extra["moderation"]
    assert record == {"prompt": {"decision": "allowed", "checks": ["blocklist"]}}


@EMBEDDED_ONLY
def test_the_moderation_endpoint_refuses_and_its_outage_follows_the_setting(
    stack_with, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    with fake_moderation() as fake:
        common = {"moderation_url": fake.url, "moderation_allow_hosts": "127.0.0.1"}
        stack: Stack = stack_with(**common)
        before = stack.balance()
        refused = stack.seed("a forbidden scene")
        assert refused.status_code == 400
        assert refused.json()["errorCode"] == "CONTENT_POLICY_VIOLATION"
        assert "violence" not in refused.text  # never the classifier's output
        v1 = stack.v1("a forbidden scene")
        assert v1.status_code == 400 and v1.json()["error"]["code"] == "moderation_blocked"
        assert stack.balance() == before and stack.tasks() == 0
        fake.status = 503
        down = stack.seed("a calm lake")
        assert down.status_code == 503 and down.json()["errorCode"] == "SERVICE_BUSY"
        assert stack.v1("a calm lake").status_code == 503
        assert stack.balance() == before and stack.tasks() == 0
        lenient: Stack = stack_with(**common, moderation_when_down="allow")
        allowed = lenient.seed("a calm lake")
        assert allowed.status_code == 200
        record = lenient.row(allowed.json()["taskId"]).extra["moderation"]
        assert record["prompt"]["reason"] == "endpoint_down"  # type: ignore[index]


# --- moderation after generation -------------------------------------------------------------


def test_a_video_refused_after_generation_fails_refunded_once_and_is_not_kept(
    stack_with,
) -> None:  # type: ignore[no-untyped-def]
    with fake_moderation(flag_images=True) as fake:
        stack: Stack = stack_with(
            moderation_output_url=fake.url, moderation_allow_hosts="127.0.0.1", moderation_frames=3
        )
        before = stack.balance()
        seed_id = stack.seed().json()["taskId"]
        v1_id = stack.v1().json()["id"]
        assert run_once(Runner(stack.services)) and run_once(Runner(stack.services))
        assert not run_once(Runner(stack.services))  # nothing left to run or refund again
    assert len(fake.requests) == 2  # one flagged frame each: the first ends the check
    for task_id in (seed_id, v1_id):
        row = stack.row(task_id)
        assert row.status == "failed" and row.error_code == "CONTENT_POLICY_VIOLATION"
        assert row.video_key is None and row.attempts == 1
        assert stack.ledger(task_id) == ["charge", "refund"]
        output = row.extra["moderation"]["output"]  # type: ignore[index]
        assert output == {
            "decision": "refused",
            "checks": ["endpoint"],
            "reason": "endpoint",
            "categories": ["sexual"],
        }
        kept = (naming.video_key(task_id, 1), *naming.preview_keys(naming.video_key(task_id, 1)))
        assert not any(stack.services.storage.exists(key) for key in kept)
    assert stack.balance() == before
    seed = stack.client.post(
        f"{SEED}/check-status", json={"taskId": seed_id}, headers=auth(stack.key)
    ).json()
    assert seed["errorCode"] == "CONTENT_POLICY_VIOLATION" and seed["creditsRefunded"] > 0
    assert "sexual" not in str(seed)
    video = stack.client.get(f"{V1}/{v1_id}", headers=auth(stack.key)).json()
    assert video["status"] == "failed" and video["error"]["code"] == "moderation_blocked"
    operator: Stack = stack_with(admin_token=TOKEN)
    page = sign_in(operator.client).get(f"/admin/tasks/{seed_id}").text
    assert "Moderation: output" in page and "flagged: sexual" in page  # the operator sees why


@EMBEDDED_ONLY
def test_an_upstream_result_is_signed_with_its_model_and_engine(
    services: Services, chain: Chain, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_FAL_KEY", "fal-secret-123")
    with FakeFal(tiny_mp4(tmp_path, frames=80)) as fal:  # 10 s, the length sold
        hosted = with_settings(
            services,
            models_file=models_file(tmp_path, "fal", fal_params(fal)),
            upstream_fetch_allow_hosts=("127.0.0.1",),
            **signing(chain, tmp_path),
        )
        hosted = dataclasses.replace(hosted, catalog=load_catalog(hosted.settings.models_file))
        with TestClient(create_app(hosted.settings, services=hosted)) as client:
            issued = make_key(services, credits=100)
            stack = Stack(hosted, client, issued.key, issued.id)
            task_id = stack.seed().json()["taskId"]
            assert run_once(Runner(hosted))
    video = stack.stored(task_id, tmp_path)
    assert probe(video).frames == 80 and probe(video).has_audio  # the upstream's sound is kept
    summary = read_manifest(video, trust_anchors_pem=chain.root_pem)
    assert summary is not None and summary.validation_state == "Trusted"
    assert summary.actions[0]["softwareAgent"]["name"] == "Reel, model hosted (fal)"  # type: ignore[index]
    assert summary.actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC_MEDIA
