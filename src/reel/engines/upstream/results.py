"""Downloading a finished video from an upstream into the task's work directory.

Only the operator's configured servers are trusted: a result on one of them (the
``/v1/videos/{id}/content`` of an OpenAI-compatible server) is fetched with the upstream's
client and credentials. Any other URL an upstream hands back (fal's or Replicate's CDN) is
untrusted and goes through the SSRF guard of ``reel.net.fetch``, without credentials.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import httpx

from reel.engines.upstream.client import UpstreamClient, same_origin
from reel.net import FetchError, FetchPolicy, Resolver, fetch_to_file


class DownloadFailed(Exception):
    def __init__(self, detail: str, *, expired: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        #: The URL answered "gone" (403/404/410): asking the upstream again may give a fresh one.
        self.expired = expired


def download(
    client: UpstreamClient,
    url: str,
    dest: Path,
    *,
    policy: FetchPolicy,
    resolver: Resolver | None = None,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Write the video at ``url`` to ``dest``; return its size in bytes. Downloads stream
    to disk: a result is never held in memory whole."""
    if url.startswith("data:"):
        data = _data_uri(url, policy.max_bytes)  # already in memory: it is the URL itself
        dest.write_bytes(data)
        return len(data)
    if same_origin(url, client.spec.pool):
        return _trusted(client, url, dest, policy)
    try:
        return fetch_to_file(url, dest, policy, resolver=resolver, transport=transport)
    except FetchError as exc:
        raise DownloadFailed(
            f"{url.split('?')[0]}: {exc.message}", expired=exc.status in (403, 404, 410)
        ) from exc


def _trusted(client: UpstreamClient, url: str, dest: Path, policy: FetchPolicy) -> int:
    size = 0
    try:
        with client.http.stream("GET", url, timeout=policy.timeout) as response:
            if not response.is_success:
                raise DownloadFailed(
                    client.scrub(f"GET {url} → {response.status_code}"),
                    expired=response.status_code in (403, 404, 410),
                )
            with dest.open("wb") as out:
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > policy.max_bytes:
                        raise DownloadFailed(f"{url}: larger than {policy.max_bytes} bytes")
                    out.write(chunk)
    except httpx.HTTPError as exc:
        raise DownloadFailed(client.scrub(f"GET {url}: {type(exc).__name__}: {exc}")) from exc
    return size


def _data_uri(url: str, max_bytes: int) -> bytes:
    header, _, payload = url.partition(",")
    if not header.endswith(";base64") or len(payload) > max_bytes * 4 // 3 + 4:
        raise DownloadFailed("a data: result that is not base64 or is too large")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise DownloadFailed("a data: result that is not valid base64") from exc
