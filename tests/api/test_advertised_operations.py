"""The API decides whether a model extends, edits or uses characters from what its live
workers advertise (their engines checked the model's own files), refusing before any charge."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from reel.db.models import Worker
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


def advertise(services: Services, operations: list[str]) -> None:
    t = time.time()
    with services.db.write() as session:
        session.add(
            Worker(
                id="gpu-1-42",
                host="gpu-1",
                pid=42,
                models=["sandbox"],
                operations={"sandbox": operations},
                started_at=t,
                last_seen=t,
            )
        )


def test_a_model_whose_workers_do_not_edit_is_refused_before_charging(
    client: TestClient, services: Services
) -> None:
    key = make_key(services, credits=100)
    resp = client.post(V1, json={"prompt": "a red kite", "seconds": "4"}, headers=auth(key.key))
    assert resp.status_code == 200, resp.text
    run_once(Runner(services))
    source = resp.json()["id"]
    advertise(services, ["extend"])  # e.g. a model folder that has no edit pipeline
    before = client.get("/api/sora-2/account", headers=auth(key.key))
    edit = client.post(
        f"{V1}/edits", json={"prompt": "in snow", "video": {"id": source}}, headers=auth(key.key)
    )
    assert edit.status_code == 400, edit.text
    assert "cannot edit videos" in edit.json()["error"]["message"]
    extend = client.post(
        f"{V1}/extensions",
        json={"prompt": "then it lands", "seconds": "4", "video": {"id": source}},
        headers=auth(key.key),
    )
    assert extend.status_code == 200, extend.text  # what the workers do advertise is accepted
    after = client.get("/api/sora-2/account", headers=auth(key.key))
    assert before.status_code == 200 and after.status_code == 200
    assert before.json()["credits"] - after.json()["credits"] == extend_price(services)


def extend_price(services: Services) -> int:
    from reel.service.extensions import price
    from reel.types import Tier

    return price(services.catalog, None, Tier.SORA2, 4)


def test_with_no_live_worker_the_engine_table_decides(
    client: TestClient, services: Services
) -> None:
    key = make_key(services, credits=100)
    resp = client.post(V1, json={"prompt": "a red kite", "seconds": "4"}, headers=auth(key.key))
    run_once(Runner(services))  # registers and unregisters: no live worker remains
    edit = client.post(
        f"{V1}/edits",
        json={"prompt": "in snow", "video": {"id": resp.json()["id"]}},
        headers=auth(key.key),
    )
    assert edit.status_code == 200, edit.text
