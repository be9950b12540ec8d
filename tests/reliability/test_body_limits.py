"""Every request body is capped as it streams, whatever the headers say; the admin sign-in
refuses a missing form cookie before it reads the body."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from reel.api.app import create_app
from reel.config import Settings
from reel.service import ledger
from reel.service.context import Services
from tests.conftest import auth
from tests.factories import make_key
from tests.reliability.asgiserver import send_streaming, serve

MB = 1024 * 1024


def balance(services: Services, key_id: str) -> int:
    with services.db.read() as session:
        return ledger.history(session, key_id, limit=1)[0].balance_after


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return Settings(**{**settings.model_dump(), "image_max_bytes": MB, "admin_token": "t" * 32})


def test_declared_lengths_over_the_cap_are_413_in_each_surfaces_shape(
    client: TestClient, services: Services
) -> None:
    issued = make_key(services, credits=100)
    big = b"x" * (services.settings.max_body_bytes + 1)
    json_headers = {**auth(issued.key), "Content-Type": "application/json"}
    r = client.post("/api/sora-2/generate", content=big, headers=json_headers)
    assert r.status_code == 413 and r.json()["errorCode"] == "INVALID_PARAMETER", r.text
    assert r.json()["param"] == "body" and r.headers["x-request-id"]
    r = client.post("/v1/videos/task_x/remix", content=big, headers=json_headers)
    assert r.status_code == 413 and r.json()["error"]["code"] == "invalid_value", r.text
    upload = b"x" * (MB + services.settings.max_body_bytes + 1)
    r = client.post(
        "/v1/videos",
        files={"input_reference": ("a.png", upload, "image/png")},
        data={"prompt": "x"},
        headers=auth(issued.key),
    )
    assert r.status_code == 413 and r.json()["error"]["param"] == "body", r.text
    r = client.post("/admin/login", content=b"token=" + b"x" * 20_000)
    assert r.status_code == 413
    assert balance(services, issued.id) == 100


def _forever(size: int = 64 * 1024) -> Iterator[bytes]:
    while True:
        yield b"x" * size


def test_chunked_bodies_stop_at_the_cap(services: Services) -> None:
    """No Content-Length: the server stops reading at the cap and answers 413 while the client
    is still sending (the old code read and spooled all of it, then refused it)."""
    issued = make_key(services, credits=100)
    app = create_app(services.settings, services=services)
    sent_cap = 24 * MB  # the cap plus what kernel socket buffers can take in
    with serve(app) as port:
        boundary = "b0undary"
        head = (
            "POST /v1/videos HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {issued.key}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        )

        def multipart() -> Iterator[bytes]:
            yield (
                f'--{boundary}\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nx\r\n'
                f'--{boundary}\r\nContent-Disposition: form-data; name="input_reference"; '
                'filename="a.png"\r\nContent-Type: image/png\r\n\r\n'
            ).encode()
            for i, chunk in enumerate(_forever()):
                if i * len(chunk) > 4 * sent_cap:
                    return
                yield chunk

        status, sent = send_streaming(port, head, multipart())
        assert status == 413 and sent < sent_cap, (status, sent)
        for path in ("/api/sora-2/generate", "/admin/login"):
            head = (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {issued.key}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                "Cookie: reel_admin_login=abc\r\n"
            )
            chunks = (c for i, c in enumerate(_forever()) if i < 4 * sent_cap // (64 * 1024))
            status, sent = send_streaming(port, head, chunks)
            assert status == 413 and sent < sent_cap, (path, status, sent)
    assert balance(services, issued.id) == 100


def test_admin_sign_in_answers_before_reading_the_body(services: Services) -> None:
    """Without the sign-in form's cookie the answer comes while the body is still open."""
    app = create_app(services.settings, services=services)
    with serve(app) as port:
        head = (
            "POST /admin/login HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 9000\r\n"
        )
        # 10 bytes of 9000 sent, then nothing: a server reading the body first would wait.
        status, sent = send_streaming(port, head, iter([b"token=abcd"]), chunked=False)
        assert status == 403 and sent == 10


def test_oversized_form_parts_are_refused(client: TestClient, services: Services) -> None:
    """A form field is at most REEL_MAX_BODY_BYTES, even inside a body the upload cap allows
    (the old limit was 1 MB a part, and unknown fields were kept in memory and ignored)."""
    issued = make_key(services, credits=100)
    part = "x" * (services.settings.max_body_bytes + 1)
    r = client.post(
        "/v1/videos", files={"prompt": (None, "x"), "notes": (None, part)}, headers=auth(issued.key)
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "body", r.text
    assert balance(services, issued.id) == 100
