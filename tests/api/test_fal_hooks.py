"""``POST /hooks/fal/{task_id}``: a signed link that only marks a running task for a wake-up."""

from __future__ import annotations

from fastapi.testclient import TestClient

from reel.db.models import Task
from reel.service import lifecycle
from reel.service.context import Services
from reel.storage.signing import callback_path, callback_signature
from reel.types import TaskStatus
from tests.conftest import auth
from tests.factories import claim_next


def _create(client: TestClient, api_key: str) -> str:
    r = client.post(
        "/api/sora-2/generate",
        json={"prompt": "a heron", "mode": "textToVideo", "aspectRatio": "landscape"},
        headers=auth(api_key),
    )
    assert r.status_code == 200, r.text
    return str(r.json()["taskId"])


def _row(services: Services, task_id: str) -> Task:
    with services.db.read() as session:
        task = session.get(Task, task_id)
        assert task is not None
        return task


def test_bad_or_missing_signature_is_404_and_changes_nothing(
    client: TestClient, services: Services, api_key: str
) -> None:
    task_id = _create(client, api_key)
    claim_next(services)
    other = callback_signature(services.settings.signing_key, "someone-else")
    good = callback_signature(services.settings.signing_key, task_id)
    for query in (
        "",
        "?sig=",
        f"?sig={other}",
        f"?sig={good[:-1]}{'1' if good[-1] == '0' else '0'}",
        "?sig=%FF%FE",
    ):
        r = client.post(f"/hooks/fal/{task_id}{query}", json={"status": "OK"})
        assert r.status_code == 404, (query, r.text)
        assert r.json()["success"] is False
    unknown = client.post(f"/hooks/fal/no-such-task?sig={good}")
    assert unknown.status_code == 404  # a good signature for another id reveals nothing either
    assert lifecycle.UPSTREAM_CALLBACK not in (_row(services, task_id).extra or {})


def test_good_signature_marks_only_a_running_task(
    client: TestClient, services: Services, api_key: str
) -> None:
    task_id = _create(client, api_key)
    link = callback_path(services.settings.signing_key, task_id)
    before = _row(services, task_id)

    r = client.post(link, json={"status": "OK", "payload": {"video": {"url": "https://x/y"}}})
    assert r.status_code == 204 and r.content == b""
    queued = _row(services, task_id)
    assert (queued.status, queued.extra) == (before.status, before.extra)  # nothing changed

    task = claim_next(services)
    assert task is not None and task.id == task_id
    lease = lifecycle.lease_of(task)
    with services.db.write() as session:
        assert lifecycle.save_engine_state(session, lease, {"job": {"id": "r1"}})
    assert client.post(link).status_code == 204
    running = _row(services, task_id)
    assert isinstance(running.extra[lifecycle.UPSTREAM_CALLBACK], float)
    assert running.extra[lifecycle.ENGINE_STATE] == {"job": {"id": "r1"}}  # kept
    assert running.status == TaskStatus.RUNNING
    with services.db.read() as session:
        assert (
            lifecycle.upstream_callback(session, task_id) == running.extra["upstream_callback_at"]
        )


def test_documented_in_openapi_without_auth(client: TestClient) -> None:
    op = client.get("/openapi.json").json()["paths"]["/hooks/fal/{task_id}"]["post"]
    assert {"204", "404"} <= set(op["responses"])
    assert "security" not in op
