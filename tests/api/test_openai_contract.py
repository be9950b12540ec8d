"""/v1/videos in process: shapes, validation, the OpenAI error body, pricing, visibility."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from reel.service import ledger
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.api.test_seed_contract import get_media
from tests.conftest import auth
from tests.factories import make_key

V1 = "/v1/videos"


def balance(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        return ledger.history(session, key_id, limit=1)[0].balance_after


def assert_openai_error(resp: object, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code and body["error"]["message"]
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("model", "size", "seconds", "price"),
    [
        ("sora-2", "720x1280", "4", 2),
        ("sora-2", "1280x720", "8", 4),
        ("sora-2", "720x1280", "12", 6),
        ("sora-2-pro", "720x1280", "4", 24),
        ("sora-2-pro", "1280x720", "12", 72),
        ("sora-2-pro", "1024x1792", "8", 96),
        ("sora-2-pro", "1792x1024", "12", 144),
    ],
)
def test_create_prices_and_shapes(
    client: TestClient, services: Services, model: str, size: str, seconds: str, price: int
) -> None:
    issued = make_key(services, credits=1000)
    r = client.post(
        V1,
        json={"model": model, "prompt": "A fox", "size": size, "seconds": seconds},
        headers=auth(issued.key),
    )
    assert r.status_code == 200, r.text
    video = r.json()
    assert video["object"] == "video" and video["status"] == "queued"
    assert video["model"] == model and video["size"] == size and video["seconds"] == seconds
    assert video["progress"] == 0 and video["error"] is None and video["expires_at"] is None
    assert balance(services, issued.id) == 1000 - price


def test_defaults_are_openais(client: TestClient, api_key: str) -> None:
    video = client.post(V1, json={"prompt": "A fox"}, headers=auth(api_key)).json()
    assert (video["model"], video["size"], video["seconds"]) == ("sora-2", "720x1280", "4")


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({}, "prompt", "missing_required_parameter"),
        ({"prompt": "  "}, "prompt", "missing_required_parameter"),
        ({"prompt": "x", "seconds": "10"}, "seconds", "invalid_value"),
        ({"prompt": "x", "size": "640x480"}, "size", "invalid_value"),
        ({"prompt": "x", "model": "sora-2", "size": "1024x1792"}, "size", "invalid_value"),
        ({"prompt": "x", "model": "dall-e"}, "model", "invalid_value"),
        # A models-file model is reachable by name only when public (test_openai_models.py).
        ({"prompt": "x", "model": "sandbox"}, "model", "invalid_value"),
        ({"prompt": "x", "input_reference": {"file_id": "file_1"}}, "input_reference", None),
        ({"prompt": "x", "input_reference": "data:image/png;base64,AAAA"}, "input_reference", None),
    ],
)
def test_invalid_requests_are_400_and_free(
    client: TestClient, services: Services, body: dict[str, object], param: str, code: str | None
) -> None:
    issued = make_key(services, credits=10)
    r = client.post(V1, json=body, headers=auth(issued.key))
    err = assert_openai_error(r, 400, code or "invalid_value")
    assert err["param"] == param and err["type"] == "invalid_request_error"
    assert balance(services, issued.id) == 10


def test_auth_quota_and_unknown_routes_speak_openai(client: TestClient, services: Services) -> None:
    err = assert_openai_error(client.get(V1), 401, "invalid_api_key")
    assert err["type"] == "invalid_request_error"
    poor = make_key(services, credits=1)
    r = client.post(V1, json={"prompt": "x"}, headers=auth(poor.key))
    err = assert_openai_error(r, 429, "insufficient_quota")
    assert err["type"] == "insufficient_quota" and r.headers["x-should-retry"] == "false"
    assert_openai_error(client.get("/v1/nothing", headers=auth(poor.key)), 404, "not_found")
    assert_openai_error(
        client.get(f"{V1}/task_nope", headers=auth(poor.key)), 404, "video_not_found"
    )
    # The seed surface keeps its own shape and status for the same condition.
    seed = client.post(
        "/api/sora-2/generate", json={"prompt": "x", "mode": "textToVideo"}, headers=auth(poor.key)
    )
    assert seed.status_code == 402 and seed.json()["errorCode"] == "INSUFFICIENT_CREDITS"


def test_list_query_validation(client: TestClient, api_key: str) -> None:
    for query in ("limit=0", "limit=101", "order=sideways"):
        assert_openai_error(
            client.get(f"{V1}?{query}", headers=auth(api_key)), 400, "invalid_value"
        )
    assert_openai_error(
        client.get(f"{V1}?after=task_nope", headers=auth(api_key)), 404, "video_not_found"
    )
    empty = client.get(V1, headers=auth(api_key)).json()
    assert empty == {
        "object": "list",
        "data": [],
        "first_id": None,
        "last_id": None,
        "has_more": False,
    }


def test_seed_tasks_are_not_videos_but_videos_are_seed_tasks(
    client: TestClient, api_key: str
) -> None:
    seed_id = client.post(
        "/api/sora-2/generate", json={"prompt": "x", "mode": "textToVideo"}, headers=auth(api_key)
    ).json()["taskId"]
    assert client.get(f"{V1}/{seed_id}", headers=auth(api_key)).status_code == 404
    vid = client.post(V1, json={"prompt": "y"}, headers=auth(api_key)).json()["id"]
    status = client.post(
        "/api/sora-2/check-status", json={"taskId": vid}, headers=auth(api_key)
    ).json()
    assert status["status"] == "processing" and status["videoDuration"] == "4"
    assert [v["id"] for v in client.get(V1, headers=auth(api_key)).json()["data"]] == [vid]


def test_content_before_completion_and_poll_header(
    client: TestClient, services: Services, api_key: str
) -> None:
    vid = client.post(V1, json={"prompt": "y"}, headers=auth(api_key)).json()["id"]
    got = client.get(f"{V1}/{vid}", headers=auth(api_key))
    assert got.headers["openai-poll-after-ms"] == "2000"
    assert_openai_error(
        client.get(f"{V1}/{vid}/content", headers=auth(api_key)), 400, "video_not_ready"
    )
    assert_openai_error(
        client.get(f"{V1}/{vid}/content?variant=poster", headers=auth(api_key)),
        400,
        "invalid_value",
    )
    run_once(Runner(services))
    done = client.get(f"{V1}/{vid}", headers=auth(api_key))
    assert done.json()["status"] == "completed" and "openai-poll-after-ms" not in done.headers
    content = fetch_content(client, f"{V1}/{vid}/content", auth(api_key))
    assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    ranged = fetch_content(client, f"{V1}/{vid}/content", {**auth(api_key), "Range": "bytes=0-9"})
    assert ranged.status_code == 206 and len(ranged.content) == 10


def fetch_content(client: TestClient, path: str, headers: dict[str, str]) -> httpx.Response:
    """Local storage answers here; object storage answers 307 to a presigned bucket link."""
    first = client.get(path, headers=headers, follow_redirects=False)
    if first.status_code != 307:
        return first
    extra = {k: v for k, v in headers.items() if k == "Range"}
    return get_media(client, first.headers["location"], headers=extra)


def test_remix_needs_a_completed_source(client: TestClient, api_key: str) -> None:
    vid = client.post(V1, json={"prompt": "y"}, headers=auth(api_key)).json()["id"]
    r = client.post(f"{V1}/{vid}/remix", json={"prompt": "z"}, headers=auth(api_key))
    assert_openai_error(r, 400, "video_not_ready")
    r = client.post(f"{V1}/{vid}/remix", json={}, headers=auth(api_key))
    assert_openai_error(r, 400, "missing_required_parameter")


def test_openapi_documents_v1_with_openai_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        V1,
        f"{V1}/{{video_id}}",
        f"{V1}/{{video_id}}/content",
        f"{V1}/{{video_id}}/remix",
    ):
        assert path in paths, path
    create = paths[V1]["post"]
    assert "multipart/form-data" in create["requestBody"]["content"]
    assert create["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OpenAIError"
    }
    assert create["security"] == [{"bearer": []}]
