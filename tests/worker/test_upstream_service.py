"""The full service path through upstream engines: API → task → worker → fake upstream →
stored MP4 → videoUrl; failover; failure refunds; cancel propagated; resume after a drain."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from reel.api.app import create_app
from reel.config import Settings
from reel.db.models import LedgerEntry, Task
from reel.service.context import Services, build_services, prepare_database
from reel.types import TaskStatus, Tier
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth
from tests.factories import make_key
from tests.fakeupstreams import (
    FakeFal,
    FakeReplicate,
    FakeVideos,
    Fault,
    tiny_mp4,
    wait_for,
)

FAST = {"poll_interval": 0.05, "request_timeout": 2.0, "poll_error_budget": 2.0}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    assert isinstance(value, Mapping)
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"


def models_file(tmp: Path, engine: str, params: Mapping[str, object]) -> Path:
    lines = [
        "[models.hosted]",
        f'engine = "{engine}"',
        "concurrency = 4",
        "",
        "[models.hosted.params]",
    ]
    lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in params.items()]
    lines += ["", "[tiers]", *[f'{t.value} = "hosted"' for t in Tier]]
    path = tmp / "models.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def mp4(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return tiny_mp4(tmp_path_factory.mktemp("mp4"), frames=120)  # 15 s: any task's length


class Stack:
    def __init__(self, services: Services, client: TestClient, key: str) -> None:
        self.services, self.client, self.key = services, client, key

    def generate(self, **body: object) -> str:
        payload = {
            "prompt": "a heron at dawn",
            "mode": "textToVideo",
            "modelTier": "sora2",
            "aspectRatio": "landscape",
            "videoDuration": "10",
            **body,
        }
        r = self.client.post("/api/sora-2/generate", json=payload, headers=auth(self.key))
        assert r.status_code == 200, r.text
        return str(r.json()["taskId"])

    def status(self, task_id: str) -> dict[str, object]:
        r = self.client.post(
            "/api/sora-2/check-status", json={"taskId": task_id}, headers=auth(self.key)
        )
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

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


@pytest.fixture
def stack_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    monkeypatch.setenv("FAKE_FAL_KEY", "fal-secret-123")
    opened: list[tuple[Services, TestClient]] = []

    def make(engine: str, params: Mapping[str, object]) -> Stack:
        settings = Settings(
            data_dir=tmp_path / "data",
            models_file=models_file(tmp_path, engine, params),
            lease_seconds=5,
            heartbeat_seconds=1,
            upstream_fetch_allow_hosts=("127.0.0.1",),
        )
        services = build_services(settings)
        prepare_database(services)
        client = TestClient(
            create_app(settings, services=services), base_url="http://testserver"
        ).__enter__()
        opened.append((services, client))
        return Stack(services, client, make_key(services, credits=100).key)

    yield make
    for services, client in opened:
        client.__exit__(None, None, None)
        services.close()


def fal_params(server: FakeFal) -> dict[str, object]:
    return {
        "base_url": server.url,
        "endpoint": "fal-ai/wan/v2.2-a14b/text-to-video",
        "credentials_env": "FAKE_FAL_KEY",
        **FAST,
    }


def rep_params(server: FakeReplicate) -> dict[str, object]:
    return {"base_url": server.url, "endpoint": "wan-video/wan-2.2-t2v-fast", **FAST}


def vid_params(server: FakeVideos) -> dict[str, object]:
    return {"base_url": server.url, **FAST}


CASES = {
    "fal": (FakeFal, fal_params),
    "replicate": (FakeReplicate, rep_params),
    "openai_videos": (FakeVideos, vid_params),
}


@pytest.mark.parametrize("engine", sorted(CASES))
def test_task_to_upstream_to_stored_mp4_to_video_url(stack_for, mp4: bytes, engine: str) -> None:  # type: ignore[no-untyped-def]
    fake_cls, params = CASES[engine]
    with fake_cls(mp4) as fake:
        stack = stack_for(engine, params(fake))
        task_id = stack.generate()
        assert run_once(Runner(stack.services))
        body = stack.status(task_id)
        assert body["status"] == "completed" and body["engine"] == engine, body
        video = stack.client.get(str(body["videoUrl"]))
        assert video.status_code == 200 and video.content == mp4  # stored by Reel, served by Reel
        job_id = fake.job().id
        meta = stack.row(task_id).extra["upstream"]
        assert isinstance(meta, dict) and meta["request_id"] == job_id and meta["kind"] == engine
        assert "engine_state" not in stack.row(task_id).extra
        assert job_id not in json.dumps(body) and "upstream" not in json.dumps(body)  # hidden
        listing = stack.client.get("/api/sora-2/tasks", headers=auth(stack.key)).text
        assert job_id not in listing
        assert stack.ledger(task_id) == ["charge"]


def test_failover_from_a_failing_first_upstream_to_a_working_second(stack_for, mp4: bytes) -> None:  # type: ignore[no-untyped-def]
    with FakeFal(mp4) as fal, FakeReplicate(mp4) as rep:
        fal.fail("submit", Fault(status=503), Fault(status=503))
        ups = [
            {"kind": "fal", "name": "fal", **fal_params(fal)},
            {"kind": "replicate", "name": "rep", **rep_params(rep)},
        ]
        stack = stack_for("upstream", {"label": "wan", "upstreams": ups})
        task_id = stack.generate()
        assert run_once(Runner(stack.services))
        body = stack.status(task_id)
        assert body["status"] == "completed" and body["engine"] == "wan"
        assert stack.client.get(str(body["videoUrl"])).content == mp4
        meta = stack.row(task_id).extra["upstream"]
        assert [a["outcome"] for a in meta["attempts"]] == ["submit_failed", "completed"]  # type: ignore[index]
        assert not fal.jobs and len(rep.jobs) == 1
        assert stack.ledger(task_id) == ["charge"]


def test_upstream_failure_is_generation_failed_and_refunded(stack_for, mp4: bytes) -> None:  # type: ignore[no-untyped-def]
    with FakeFal(mp4) as fal:
        fal.fail_jobs = True
        stack = stack_for("fal", fal_params(fal))
        task_id = stack.generate()
        run_once(Runner(stack.services))
        body = stack.status(task_id)
        assert body["status"] == "failed" and body["errorCode"] == "GENERATION_FAILED"
        assert body["error"] == "The video provider could not generate this video"
        assert body["creditsRefunded"] == stack.row(task_id).credits
        assert stack.ledger(task_id) == ["charge", "refund"]


def test_cancel_is_propagated_upstream(stack_for, mp4: bytes) -> None:  # type: ignore[no-untyped-def]
    with FakeFal(mp4, run_s=60) as fal:
        stack = stack_for("fal", fal_params(fal))
        task_id = stack.generate()
        runner = threading.Thread(target=run_once, args=(Runner(stack.services),))
        runner.start()
        wait_for(lambda: bool(fal.jobs) and stack.row(task_id).stage == "generating", timeout=15)
        r = stack.client.post(
            "/api/sora-2/cancel", json={"taskId": task_id}, headers=auth(stack.key)
        )
        assert r.status_code == 200
        runner.join(15)
        assert fal.job().canceled and len(fal.calls("cancel")) == 1
        body = stack.status(task_id)
        assert body["errorCode"] == "TASK_CANCELED"
        assert stack.ledger(task_id) == ["charge", "refund"]


def test_a_drained_task_resumes_its_upstream_job_on_the_next_attempt(stack_for, mp4: bytes) -> None:  # type: ignore[no-untyped-def]
    with FakeVideos(mp4, run_s=1.5) as vids:
        stack = stack_for("openai_videos", vid_params(vids))
        task_id = stack.generate()
        first = Runner(stack.services)
        thread = threading.Thread(target=run_once, args=(first,))
        thread.start()
        wait_for(lambda: bool(vids.jobs), timeout=15)
        first.stop(drain=True)
        thread.join(15)
        row = stack.row(task_id)
        assert (
            row.status == TaskStatus.QUEUED
            and row.extra["engine_state"]["job"]["id"] == vids.job().id
        )  # type: ignore[index]
        assert not vids.calls("cancel")
        assert run_once(Runner(stack.services))
        assert stack.status(task_id)["status"] == "completed"
        assert len(vids.calls("submit")) == 1
        assert stack.row(task_id).extra["upstream"]["resumed"] is True  # type: ignore[index]


def test_secrets_never_reach_logs_or_users(
    stack_for, mp4: bytes, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    with FakeFal(mp4) as fal:
        echo = {"detail": "bad key: Key fal-secret-123"}
        fal.fail("submit", Fault(status=401, body=echo))
        stack = stack_for("fal", fal_params(fal))
        task_id = stack.generate()
        run_once(Runner(stack.services))
        body = stack.status(task_id)
        assert body["status"] == "failed"
        assert fal.calls("submit")[0].headers["authorization"] == "Key fal-secret-123"
        assert "fal-secret-123" not in caplog.text and "***" in caplog.text
        assert "fal-secret-123" not in json.dumps(body) + json.dumps(stack.row(task_id).extra)
