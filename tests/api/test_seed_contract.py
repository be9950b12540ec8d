"""The /api/sora-2 contract in process: shapes, every error code, pricing, no charge on 4xx."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient

from reel.api.app import create_app
from reel.config import Settings
from reel.service import ledger
from reel.service.context import Services
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth, with_settings
from tests.factories import make_key
from tests.imageserver import image_server, png_bytes

GEN = "/api/sora-2/generate"
STATUS = "/api/sora-2/check-status"
T2V = {"prompt": "A golden retriever running on a beach", "mode": "textToVideo"}


def balance(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        entries = ledger.history(session, key_id, limit=1)
        return entries[0].balance_after if entries else 0


def key_id_of(client: TestClient, key: str) -> str:
    return str(client.get("/api/sora-2/account", headers=auth(key)).json()["keyId"])


def get_media(client: TestClient, url: str, **kwargs: object) -> httpx.Response:
    """Local storage links are served by the app; S3 links by the bucket."""
    if url.startswith(str(client.base_url)):
        return client.get(url, **kwargs)  # type: ignore[arg-type]
    return httpx.get(url, timeout=30, **kwargs)  # type: ignore[arg-type]


def assert_error(resp: object, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text  # type: ignore[attr-defined]
    body = resp.json()  # type: ignore[attr-defined]
    assert body["success"] is False
    assert body["errorCode"] == code
    assert isinstance(body["error"], str) and body["error"]
    return body  # type: ignore[no-any-return]


def test_generate_then_status_processing_shape(client: TestClient, api_key: str) -> None:
    r = client.post(
        GEN,
        json={**T2V, "modelTier": "sora2", "aspectRatio": "landscape", "videoDuration": "10"},
        headers=auth(api_key),
    )
    assert r.status_code == 200
    body = r.json()
    assert body["success"] is True and body["status"] == "processing"
    assert body["taskId"].startswith("task_") and body["message"]
    s = client.post(STATUS, json={"taskId": body["taskId"]}, headers=auth(api_key)).json()
    assert s["success"] is True and s["status"] == "processing"
    assert s["progress"] == "queued" and s["queuePosition"] == 1 and s["taskId"] == body["taskId"]
    assert s["aspectRatio"] == "landscape" and s["videoDuration"] == "10"


@pytest.mark.parametrize(
    ("tier", "duration", "price"),
    [
        ("sora2", "10", 4),
        ("sora2", "15", 8),
        ("sora2-pro-standard", "10", 60),
        ("sora2-pro-standard", 15, 100),
        ("sora2-pro-high", 10, 120),
        ("sora2-pro-high", "15", 240),
    ],
)
def test_pricing_every_cell(
    client: TestClient, services: Services, tier: str, duration: object, price: int
) -> None:
    issued = make_key(services, credits=1000)
    r = client.post(
        GEN, json={**T2V, "modelTier": tier, "videoDuration": duration}, headers=auth(issued.key)
    )
    assert r.status_code == 200, r.text
    assert balance(services, issued.id) == 1000 - price


def test_default_duration_is_10(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=10)
    client.post(GEN, json=T2V, headers=auth(issued.key))
    assert balance(services, issued.id) == 6


def test_completed_status_and_refund_on_failure(
    settings: Settings, services: Services, client: TestClient
) -> None:
    issued = make_key(services, credits=20)
    tid = client.post(GEN, json=T2V, headers=auth(issued.key)).json()["taskId"]
    assert run_once(Runner(services))
    s = client.post(STATUS, json={"taskId": tid}, headers=auth(issued.key)).json()
    assert s["status"] == "completed" and s["creditsUsed"] == 4 and s["engine"] == "sandbox"
    assert isinstance(s["generationTime"], int)
    video = get_media(client, s["videoUrl"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    ranged = get_media(client, s["videoUrl"], headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and len(ranged.content) == 100

    tid2 = client.post(GEN, json=T2V, headers=auth(issued.key)).json()["taskId"]
    assert balance(services, issued.id) == 12
    run_once(Runner(with_settings(services, sandbox_fail_rate=1.0)))
    f = client.post(STATUS, json={"taskId": tid2}, headers=auth(issued.key))
    assert f.status_code == 200
    body = f.json()
    assert body["success"] is False and body["status"] == "failed"
    assert body["errorCode"] == "GENERATION_FAILED" and body["error"]
    assert balance(services, issued.id) == 16  # refunded exactly once
    with services.db.read() as session:
        kinds = [e.kind for e in ledger.history(session, issued.id) if e.task_id == tid2]
    assert sorted(kinds) == ["charge", "refund"]


def test_login_required(client: TestClient) -> None:
    assert_error(client.post(GEN, json=T2V), 401, "LOGIN_REQUIRED")
    assert_error(
        client.post(GEN, json=T2V, headers={"Authorization": "Bearer nope"}), 401, "LOGIN_REQUIRED"
    )
    assert_error(
        client.post(GEN, json=T2V, headers={"Authorization": "Basic abc"}), 401, "LOGIN_REQUIRED"
    )
    fake = "sk-reel-" + "A" * 43
    assert_error(
        client.post(STATUS, json={"taskId": "x"}, headers=auth(fake)), 401, "LOGIN_REQUIRED"
    )


def test_revoked_key_refused_at_next_request(client: TestClient, services: Services) -> None:
    from reel.service import keys

    issued = make_key(services, credits=10)
    assert client.get("/api/sora-2/account", headers=auth(issued.key)).status_code == 200
    with services.db.write() as session:
        keys.revoke(session, issued.id)
    assert_error(client.get("/api/sora-2/account", headers=auth(issued.key)), 401, "LOGIN_REQUIRED")


def test_insufficient_credits_charges_nothing(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=3)
    body = assert_error(
        client.post(GEN, json=T2V, headers=auth(issued.key)), 402, "INSUFFICIENT_CREDITS"
    )
    assert body["requiredCredits"] == 4
    assert balance(services, issued.id) == 3


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        ({"mode": "textToVideo"}, "PROMPT_REQUIRED"),
        ({"prompt": "   ", "mode": "textToVideo"}, "PROMPT_REQUIRED"),
        ({"prompt": "x", "mode": "imageToVideo"}, "IMAGE_REQUIRED"),
        ({"prompt": "x", "mode": "imageToVideo", "imageUrls": []}, "IMAGE_REQUIRED"),
        (
            {"prompt": "x", "mode": "imageToVideo", "imageUrls": ["data:image/png;base64,AAAA"]},
            "IMAGE_URLS_REQUIRED",
        ),
        ({"prompt": "x", "mode": "imageToVideo", "image": "iVBORw0KGgo="}, "IMAGE_URLS_REQUIRED"),
        (
            {"prompt": "x", "mode": "imageToVideo", "imageUrls": [], "imageBase64": "iVBORw0KGgo="},
            "IMAGE_URLS_REQUIRED",
        ),
        ({"prompt": "x", "mode": "imageToVideo", "imageUrls": ["A" * 200]}, "IMAGE_URLS_REQUIRED"),
        ({"prompt": "x"}, "INVALID_PARAMETER"),
        ({"prompt": "x", "mode": "video"}, "INVALID_PARAMETER"),
        ({**T2V, "modelTier": "sora3"}, "INVALID_PARAMETER"),
        ({**T2V, "aspectRatio": "square"}, "INVALID_PARAMETER"),
        ({**T2V, "videoDuration": "12"}, "INVALID_PARAMETER"),
        ({**T2V, "videoDuration": 10.5}, "INVALID_PARAMETER"),
        ({**T2V, "videoDuration": True}, "INVALID_PARAMETER"),
        ({"prompt": 42, "mode": "textToVideo"}, "INVALID_PARAMETER"),
        ({"prompt": "x" * 5000, "mode": "textToVideo"}, "INVALID_PARAMETER"),
        (
            {"prompt": "x", "mode": "imageToVideo", "imageUrls": "http://x/y.png"},
            "INVALID_PARAMETER",
        ),
        ({"prompt": "x", "mode": "imageToVideo", "imageUrls": [1]}, "INVALID_PARAMETER"),
        (
            {"prompt": "x", "mode": "imageToVideo", "imageUrls": ["http://127.0.0.1:1/a.png"] * 5},
            "INVALID_PARAMETER",
        ),
    ],
)
def test_bad_generate_requests(
    client: TestClient, services: Services, payload: dict[str, object], code: str
) -> None:
    issued = make_key(services, credits=100)
    body = assert_error(client.post(GEN, json=payload, headers=auth(issued.key)), 400, code)
    if code == "INVALID_PARAMETER":
        assert body["param"]
    assert balance(services, issued.id) == 100


def test_invalid_parameter_names_allowed_values(client: TestClient, api_key: str) -> None:
    body = assert_error(
        client.post(GEN, json={"prompt": "x", "mode": "nope"}, headers=auth(api_key)),
        400,
        "INVALID_PARAMETER",
    )
    assert body["param"] == "mode" and body["allowed"] == ["textToVideo", "imageToVideo"]
    assert "textToVideo" in str(body["error"])


@pytest.mark.parametrize("raw", [b"{not json", b"[1,2]", b'"prompt"', b"\xff\xfe", b"null"])
def test_malformed_bodies(client: TestClient, api_key: str, raw: bytes) -> None:
    r = client.post(GEN, content=raw, headers={**auth(api_key), "Content-Type": "application/json"})
    assert_error(r, 400, "INVALID_PARAMETER")


def test_oversized_body(client: TestClient, api_key: str) -> None:
    r = client.post(GEN, json={**T2V, "padding": "x" * 100_000}, headers=auth(api_key))
    assert_error(r, 413, "INVALID_PARAMETER")  # capped as it streams: reel.api.middleware


def test_task_id_required_and_not_found(client: TestClient, services: Services) -> None:
    a, b = make_key(services, credits=10), make_key(services, credits=10)
    assert_error(client.post(STATUS, json={}, headers=auth(a.key)), 400, "TASK_ID_REQUIRED")
    assert_error(
        client.post(STATUS, json={"taskId": ""}, headers=auth(a.key)), 400, "TASK_ID_REQUIRED"
    )
    missing = assert_error(
        client.post(STATUS, json={"taskId": "task_000"}, headers=auth(a.key)), 404, "TASK_NOT_FOUND"
    )
    tid = client.post(GEN, json=T2V, headers=auth(a.key)).json()["taskId"]
    other = assert_error(
        client.post(STATUS, json={"taskId": tid}, headers=auth(b.key)), 404, "TASK_NOT_FOUND"
    )
    assert missing["error"] == other["error"]  # indistinguishable


def test_rate_limit_429_with_headers(settings: Settings, services: Services) -> None:
    limited = with_settings(services, rate_limit_create="3/hour")
    app = create_app(limited.settings, services=limited)
    issued = make_key(services, credits=1000)
    with TestClient(app) as c:
        first = c.post(GEN, json=T2V, headers=auth(issued.key))
        assert first.headers["RateLimit-Limit"] == "3"
        assert first.headers["RateLimit-Remaining"] == "2"
        assert first.headers["RateLimit-Policy"] == "3;w=3600"
        for _ in range(2):
            assert c.post(GEN, json=T2V, headers=auth(issued.key)).status_code == 200
        r = c.post(GEN, json=T2V, headers=auth(issued.key))
        assert_error(r, 429, "API_KEY_RATE_LIMIT_EXCEEDED")
        assert int(r.headers["Retry-After"]) > 0
        assert r.headers["X-RateLimit-Remaining"] == "0"
        # status polls have their own budget
        tid = first.json()["taskId"]
        assert c.post(STATUS, json={"taskId": tid}, headers=auth(issued.key)).status_code == 200
        # another key is unaffected
        other = make_key(services, credits=10)
        assert c.post(GEN, json=T2V, headers=auth(other.key)).status_code == 200
    assert balance(services, issued.id) == 1000 - 3 * 4


def test_active_task_cap(settings: Settings, services: Services) -> None:
    capped = with_settings(services, max_active_tasks_per_key=2)
    issued = make_key(services, credits=100)
    with TestClient(create_app(capped.settings, services=capped)) as c:
        for _ in range(2):
            assert c.post(GEN, json=T2V, headers=auth(issued.key)).status_code == 200
        body = assert_error(
            c.post(GEN, json=T2V, headers=auth(issued.key)), 429, "ACTIVE_TASK_LIMIT_EXCEEDED"
        )
        assert body["maxActiveTasks"] == 2
    assert balance(services, issued.id) == 92


def test_image_to_video_fetches_once_and_uses_copy(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=10)
    routes = {"/cat.png": (200, "image/png", png_bytes(80, 60))}
    with image_server(routes) as base:
        r = client.post(
            GEN,
            json={"prompt": "cat", "mode": "imageToVideo", "imageUrls": [f"{base}/cat.png"]},
            headers=auth(issued.key),
        )
        assert r.status_code == 200, r.text
    tid = r.json()["taskId"]
    assert services.storage.exists(f"inputs/{tid}.png")
    assert run_once(Runner(services))  # the image server is gone: the stored copy is used
    s = client.post(STATUS, json={"taskId": tid}, headers=auth(issued.key)).json()
    assert s["status"] == "completed" and s["mode"] == "imageToVideo"


@pytest.mark.parametrize(
    "route",
    [
        (404, "image/png", b""),
        (200, "image/png", b"not an image at all"),
        (200, "text/html", b"<html></html>"),
        (200, "image/png", png_bytes()[:40]),
    ],
)
def test_image_fetch_failed(
    client: TestClient, services: Services, route: tuple[int, str, bytes]
) -> None:
    issued = make_key(services, credits=10)
    with image_server({"/x.png": route}) as base:
        r = client.post(
            GEN,
            json={"prompt": "x", "mode": "imageToVideo", "imageUrls": [f"{base}/x.png"]},
            headers=auth(issued.key),
        )
    assert_error(r, 400, "IMAGE_FETCH_FAILED")
    assert balance(services, issued.id) == 10


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost/a.png",
        "http://10.0.0.1/a.png",
        "http://169.254.169.254/latest",
        "ftp://127.0.0.1/a.png",
        "file:///etc/passwd",
        "http://[::1]/a.png",
        "http://2130706433/",
        "http://user@127.0.0.1/a.png",
        "not a url",
    ],
)
def test_refused_image_urls(client: TestClient, services: Services, url: str) -> None:
    issued = make_key(services, credits=10)
    r = client.post(
        GEN,
        json={"prompt": "x", "mode": "imageToVideo", "imageUrls": [url]},
        headers=auth(issued.key),
    )
    assert_error(r, 400, "IMAGE_FETCH_FAILED")
    assert balance(services, issued.id) == 10


def test_unknown_route_and_method_use_contract_shape(client: TestClient, api_key: str) -> None:
    assert_error(client.get("/api/sora-2/nope", headers=auth(api_key)), 404, "NOT_FOUND")
    r = client.get(GEN, headers=auth(api_key))
    assert r.status_code == 405 and r.json()["success"] is False


def test_list_tasks_paginates_newest_first(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=100)
    ids = [client.post(GEN, json=T2V, headers=auth(issued.key)).json()["taskId"] for _ in range(5)]
    page1 = client.get("/api/sora-2/tasks?limit=2", headers=auth(issued.key)).json()
    assert [t["taskId"] for t in page1["data"]] == ids[::-1][:2] and page1["hasMore"]
    page2 = client.get(
        f"/api/sora-2/tasks?limit=2&after={page1['nextCursor']}", headers=auth(issued.key)
    ).json()
    assert [t["taskId"] for t in page2["data"]] == ids[::-1][2:4]
    page3 = client.get(
        f"/api/sora-2/tasks?limit=2&after={page2['nextCursor']}", headers=auth(issued.key)
    ).json()
    assert [t["taskId"] for t in page3["data"]] == ids[:1] and not page3["hasMore"]
    assert_error(
        client.get("/api/sora-2/tasks?limit=0", headers=auth(issued.key)), 400, "INVALID_PARAMETER"
    )


def test_account(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=50, name="acme")
    client.post(GEN, json=T2V, headers=auth(issued.key))
    body = client.get("/api/sora-2/account", headers=auth(issued.key)).json()
    assert body["name"] == "acme" and body["credits"] == 46 and body["activeTasks"] == 1
    assert body["rateLimits"]["create"]["remaining"] == 99
    assert body["usage"]["queued"] == 1


def test_cancel_queued_refunds_once(client: TestClient, services: Services) -> None:
    issued = make_key(services, credits=10)
    tid = client.post(GEN, json=T2V, headers=auth(issued.key)).json()["taskId"]
    r = client.post("/api/sora-2/cancel", json={"taskId": tid}, headers=auth(issued.key)).json()
    assert r["status"] == "failed" and r["errorCode"] == "TASK_CANCELED" and r["canceled"] is True
    again = client.post("/api/sora-2/cancel", json={"taskId": tid}, headers=auth(issued.key))
    assert again.status_code == 200
    assert balance(services, issued.id) == 10
    assert not run_once(Runner(services))


def test_openapi_documents_errors(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    gen = spec["paths"]["/api/sora-2/generate"]["post"]
    for status in ("400", "401", "402", "429", "500"):
        assert status in gen["responses"]
        ref = gen["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        assert ref.endswith("/ErrorBody")
    body_ref = gen["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert body_ref.endswith("/GenerateRequest")
    assert "GenerateRequest" in spec["components"]["schemas"]
    assert client.get("/docs").status_code == 200


def test_openapi_every_error_response_has_the_error_schema(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    checked = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            expected = "/OpenAIError" if path.startswith("/v1/") else "/ErrorBody"
            for status, response in op["responses"].items():
                if status[0] in "45":
                    schema = response["content"]["application/json"]["schema"]
                    assert schema["$ref"].endswith(expected), (method, path, status)
                    checked += 1
    assert checked >= 20
    assert "HTTPValidationError" not in spec["components"]["schemas"]


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ok"}
