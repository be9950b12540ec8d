"""A loopback moderation endpoint in the shape of OpenAI's ``POST /v1/moderations``.

It flags a text input containing one of ``flag_words``, and image inputs when ``flag_images``
is set; ``status`` other than 200 or ``delay`` play an endpoint that is down or hung.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class FakeModeration:
    url: str = ""
    flag_words: tuple[str, ...] = ("forbidden",)
    flag_images: bool = False
    status: int = 200
    delay: float = 0.0
    #: Answer 200 with a body that is not a moderation result.
    garbage: bool = False
    requests: list[dict[str, object]] = field(default_factory=list[dict[str, object]])
    headers: list[dict[str, str]] = field(default_factory=list[dict[str, str]])

    def answer(self, body: dict[str, object]) -> dict[str, object]:
        items = body["input"] if isinstance(body["input"], list) else [body["input"]]
        results = []
        for item in items:
            if isinstance(item, str):
                flagged = any(w in item.lower() for w in self.flag_words)
                category = "violence"
            else:
                flagged, category = self.flag_images, "sexual"
            results.append(
                {
                    "flagged": flagged,
                    "categories": {category: flagged, "harassment": False},
                    "category_scores": {category: 0.97 if flagged else 0.01, "harassment": 0.0},
                }
            )
        return {"id": "modr-test", "model": body.get("model", "guard"), "results": results}


@contextmanager
def fake_moderation(**options: object) -> Iterator[FakeModeration]:
    fake = FakeModeration(**options)  # type: ignore[arg-type]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            fake.requests.append(body)
            fake.headers.append({k.lower(): v for k, v in self.headers.items()})
            if fake.delay:
                time.sleep(fake.delay)
            if fake.status != 200:
                payload = b'{"error": {"message": "down"}}'
            elif fake.garbage:
                payload = b'{"unexpected": true}'
            else:
                payload = json.dumps(fake.answer(body)).encode()
            try:
                self.send_response(fake.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the client gave up (timeout tests)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake.url = f"http://127.0.0.1:{server.server_address[1]}/v1/moderations"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
