"""HMAC signatures for links Reel serves itself: expiring media URLs and upstream callbacks."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote


def _mac(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def _same(expected: str, signature: str) -> bool:
    return hmac.compare_digest(expected.encode(), signature.encode("utf-8", "surrogatepass"))


def sign(secret: bytes, key: str, expires: int) -> str:
    return _mac(secret, f"{key}\n{expires}")


def signed_path(secret: bytes, key: str, *, expires_in: int, now: float | None = None) -> str:
    expires = int((time.time() if now is None else now) + expires_in)
    return f"/media/{quote(key)}?exp={expires}&sig={sign(secret, key, expires)}"


def verify(secret: bytes, key: str, expires: int, signature: str) -> bool:
    return _same(sign(secret, key, expires), signature)


# --- upstream callbacks (fal.ai webhooks) ---------------------------------------------------


def callback_signature(secret: bytes, task_id: str) -> str:
    """The signature of a task's upstream callback link. It never expires: a callback only
    wakes the worker following the task, which then asks the upstream itself."""
    return _mac(secret, f"fal-webhook:{task_id}")


def callback_path(secret: bytes, task_id: str) -> str:
    return f"/hooks/fal/{quote(task_id, safe='')}?sig={callback_signature(secret, task_id)}"


def verify_callback(secret: bytes, task_id: str, signature: str) -> bool:
    return _same(callback_signature(secret, task_id), signature)
