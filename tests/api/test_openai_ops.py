"""/v1/videos/extensions, /edits and /characters in process: plain HTTP for references, the
unmodified ``openai`` package for uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import openai
import pytest
from fastapi.testclient import TestClient

from reel.media.video import encode_frames, probe
from reel.service import ledger
from reel.service.catalog import Catalog
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth
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
