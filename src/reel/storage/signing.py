"""HMAC-signed, expiring media URLs served by Reel itself."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote


def sign(secret: bytes, key: str, expires: int) -> str:
    msg = f"{key}\n{expires}".encode()
    return hmac.new(secret, msg, hashlib.sha256).hexdigest()


def signed_path(secret: bytes, key: str, *, expires_in: int, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + expires_in)
    return f"/media/{quote(key)}?exp={expires}&sig={sign(secret, key, expires)}"


def verify(secret: bytes, key: str, expires: int, signature: str) -> bool:
    expected = sign(secret, key, expires).encode()
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))
