"""/docs and /redoc: packaged assets on the same origin, under a strict CSP; HEAD on probes
and media; signed links kept out of the access log."""

from __future__ import annotations

import logging
import re

from fastapi.testclient import TestClient

from reel.logs import RedactSignedQueries


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_docs_pages_name_only_same_origin_assets_and_they_load(client: TestClient) -> None:
    for page, expected in (
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "swagger-init.js"}),
        ("/redoc", {"redoc.standalone.js"}),
    ):
        r = client.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self';" in csp and "default-src 'none'" in csp
        assert "<script>" not in r.text  # no inline script: the CSP would refuse it
        assets = _assets(r.text)
        assert expected <= {a.rsplit("/", 1)[-1] for a in assets}
        for asset in assets:
            assert asset.startswith("/") and not asset.startswith("//"), asset
            loaded = client.get(asset)
            assert loaded.status_code == 200 and len(loaded.content) > 100, asset
            assert loaded.headers["x-content-type-options"] == "nosniff"
    assert 'data-spec-url="/openapi.json"' in client.get("/docs").text
    assert 'spec-url="/openapi.json"' in client.get("/redoc").text
    assert client.get("/docs/oauth2-redirect").status_code == 404
    assert "/docs/assets" not in str(client.get("/openapi.json").json()["paths"])


def test_the_console_links_to_the_packaged_reference(client: TestClient) -> None:
    assert 'href="/docs"' in client.get("/").text


def test_head_on_health_probes(client: TestClient) -> None:
    for path in ("/healthz", "/readyz"):
        r = client.head(path)
        assert r.status_code == 200 and r.content == b"", path
    assert "head" not in client.get("/openapi.json").json()["paths"]["/healthz"]


def test_signed_queries_are_stripped_from_access_log_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/media/videos/t.mp4?exp=1&sig=abc", "1.1", 200),
        None,
    )
    assert RedactSignedQueries().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "GET /media/videos/t.mp4 HTTP/1.1" 200'
    hook = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s", ("/hooks/fal/task_1?sig=x",), None
    )
    RedactSignedQueries().filter(hook)
    assert hook.getMessage() == "/hooks/fal/task_1"
    other = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, "%s", ("/v1/videos?limit=5",), None
    )
    RedactSignedQueries().filter(other)
    assert other.getMessage() == "/v1/videos?limit=5"


def test_every_reference_in_the_served_openapi_document_resolves(client: TestClient) -> None:
    """A dangling ``$ref`` (a body model left out of the components) breaks ReDoc's page."""
    schema = client.get("/openapi.json").json()
    refs: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                refs.add(ref)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert "#/components/schemas/ExtendVideoRequest" in refs
    components = schema["components"]["schemas"]
    dangling = sorted(r for r in refs if r.rsplit("/", 1)[-1] not in components)
    assert dangling == []
