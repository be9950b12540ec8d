"""Real responses, on every path (first, middle and last pages; tasks in every state, made on
either surface), validated against the OpenAPI document the app serves."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth, with_settings
from tests.factories import make_key

GEN = "/api/sora-2/generate"
T2V = {"prompt": "A fox", "mode": "textToVideo"}


class Documented:
    """Validates a response against what ``/openapi.json`` says that operation answers."""

    def __init__(self, client: TestClient) -> None:
        self.doc: dict[str, Any] = client.get("/openapi.json").json()

    def check(self, path: str, method: str, response: Any) -> dict[str, Any]:
        op = self.doc["paths"][path][method]
        documented = op["responses"][str(response.status_code)]
        schema = documented["content"]["application/json"]["schema"]
        # $refs are "#/components/…": resolve them against a root that carries the components.
        root = {**schema, "components": self.doc["components"]}
        errors = sorted(Draft202012Validator(root).iter_errors(response.json()), key=str)
        assert not errors, f"{method.upper()} {path} {response.status_code}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )
        return response.json()  # type: ignore[no-any-return]


def _tasks_in_every_state(client: TestClient, services: Services, key: str) -> list[str]:
    """Completed, failed, canceled and queued tasks from /api/sora-2 and /v1/videos."""
    ids = [client.post(GEN, json=T2V, headers=auth(key)).json()["taskId"]]
    run_once(Runner(services))  # completed (seed)
    ids.append(client.post("/v1/videos", json={"prompt": "A boat"}, headers=auth(key)).json()["id"])
    run_once(Runner(services))  # completed (openai)
    ids.append(client.post(GEN, json=T2V, headers=auth(key)).json()["taskId"])
    run_once(Runner(with_settings(services, sandbox_fail_rate=1.0)))  # failed
    ids.append(client.post(GEN, json=T2V, headers=auth(key)).json()["taskId"])
    client.post("/api/sora-2/cancel", json={"taskId": ids[-1]}, headers=auth(key))  # canceled
    ids.append(client.post("/v1/videos", json={"prompt": "Rain"}, headers=auth(key)).json()["id"])
    ids.append(client.post(GEN, json=T2V, headers=auth(key)).json()["taskId"])  # queued
    return ids


@pytest.mark.parametrize("limit", [2, 6, 100])
def test_task_listing_matches_its_schema_on_every_page(
    client: TestClient, services: Services, limit: int
) -> None:
    """The last page, too: ``nextCursor`` is required, so it is there (null)."""
    issued = make_key(services, credits=1000)
    ids = _tasks_in_every_state(client, services, issued.key)
    documented = Documented(client)
    seen: list[str] = []
    after = ""
    for _ in range(len(ids) + 1):
        query = f"?limit={limit}" + (f"&after={after}" if after else "")
        page = documented.check(
            "/api/sora-2/tasks",
            "get",
            client.get(f"/api/sora-2/tasks{query}", headers=auth(issued.key)),
        )
        seen += [t["taskId"] for t in page["data"]]
        assert page["hasMore"] == (page["nextCursor"] is not None)
        if not page["hasMore"]:
            break
        after = page["nextCursor"]
    assert seen == ids[::-1]


def test_every_read_matches_its_schema(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=1000)
    ids = _tasks_in_every_state(client, services, issued.key)
    documented = Documented(client)
    for task_id in ids:
        r = client.post(
            "/api/sora-2/check-status", json={"taskId": task_id}, headers=auth(issued.key)
        )
        documented.check("/api/sora-2/check-status", "post", r)
    after = ""
    for _ in range(len(ids) + 1):
        query = "?limit=1" + (f"&after={after}" if after else "")
        page = documented.check(
            "/v1/videos", "get", client.get(f"/v1/videos{query}", headers=auth(issued.key))
        )
        for video in page["data"]:
            documented.check(
                "/v1/videos/{video_id}",
                "get",
                client.get(f"/v1/videos/{video['id']}", headers=auth(issued.key)),
            )
        if not page["has_more"]:
            break
        after = page["last_id"]
    documented.check(
        "/api/sora-2/account", "get", client.get("/api/sora-2/account", headers=auth(issued.key))
    )
    documented.check("/api/sora-2/pricing", "get", client.get("/api/sora-2/pricing"))
    missing = client.post(
        "/api/sora-2/check-status", json={"taskId": "task_x"}, headers=auth(issued.key)
    )
    documented.check("/api/sora-2/check-status", "post", missing)
    documented.check(
        "/v1/videos/{video_id}", "get", client.get("/v1/videos/task_x", headers=auth(issued.key))
    )
