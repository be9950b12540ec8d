"""Console security: admin token check, session cookie, CSRF tokens, login throttle, headers.

The admin session is a signed cookie, ``EXPIRES.NONCE.SIGNATURE``, signed with a key derived
from the settings' signing key *and* the admin token, backed by a database row
(``reel.service.admin_sessions``, keyed by the nonce's hash) that signing out deletes: a copied
cookie dies with its session, and changing ``REEL_ADMIN_TOKEN`` ends every session. The CSRF
token of a session is derived from its nonce.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Final

from reel.config import Settings
from reel.service.ratelimit import FailureThrottle

SESSION_COOKIE: Final = "reel_admin"
LOGIN_COOKIE: Final = "reel_admin_login"
COOKIE_PATH: Final = "/admin"


def admin_enabled(settings: Settings) -> bool:
    return settings.admin_token is not None and bool(settings.admin_token.get_secret_value())


def _admin_token(settings: Settings) -> bytes:
    if settings.admin_token is None:
        raise RuntimeError("the admin console is disabled")
    return settings.admin_token.get_secret_value().encode()


def _mac(key: bytes, *parts: str) -> str:
    return hmac.new(key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()


def token_matches(settings: Settings, presented: str) -> bool:
    """Constant time, whatever the lengths: both sides are hashed to 32 bytes first."""
    expected = hashlib.sha256(_admin_token(settings)).digest()
    return hmac.compare_digest(hashlib.sha256(presented.encode()).digest(), expected)


def _session_key(settings: Settings) -> bytes:
    return hmac.new(
        settings.signing_key, b"reel-admin-session\n" + _admin_token(settings), hashlib.sha256
    ).digest()


@dataclass(frozen=True, slots=True)
class AdminSession:
    nonce: str
    expires: int
    csrf: str


def new_session(settings: Settings, *, now: float) -> tuple[str, AdminSession]:
    """A fresh session and the cookie value that carries it."""
    nonce = secrets.token_urlsafe(18)
    expires = int(now + settings.admin_session_seconds)
    key = _session_key(settings)
    cookie = f"{expires}.{nonce}.{_mac(key, 'session', str(expires), nonce)}"
    return cookie, AdminSession(nonce, expires, _mac(key, "csrf", nonce))


def read_session(settings: Settings, cookie: str | None, *, now: float) -> AdminSession | None:
    """The session a cookie carries, or ``None`` if absent, forged, expired or disabled."""
    if not cookie or not admin_enabled(settings):
        return None
    parts = cookie.split(".")
    if len(parts) != 3 or not parts[0].isdigit():
        return None
    expires_text, nonce, signature = parts
    key = _session_key(settings)
    if not hmac.compare_digest(_mac(key, "session", expires_text, nonce), signature):
        return None
    expires = int(expires_text)
    if expires < now:
        return None
    return AdminSession(nonce, expires, _mac(key, "csrf", nonce))


def session_id(session: AdminSession) -> str:
    """The server-side row's key: the nonce's hash (the nonce itself is never stored)."""
    return hashlib.sha256(session.nonce.encode()).hexdigest()


def token_tag(settings: Settings) -> str:
    """Names the admin token a session was started with, without storing anything it reveals."""
    return _mac(settings.signing_key, "admin-token-tag", _admin_token(settings).decode())


def csrf_valid(session: AdminSession, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(session.csrf, presented)


def login_nonce() -> str:
    return secrets.token_urlsafe(18)


def login_csrf(settings: Settings, nonce: str) -> str:
    """The sign-in form's CSRF token, bound to a short-lived cookie (double submit, signed)."""
    return _mac(settings.signing_key, "admin-login", nonce)


def login_csrf_valid(settings: Settings, nonce: str | None, presented: str | None) -> bool:
    if not nonce or not presented:
        return False
    return hmac.compare_digest(login_csrf(settings, nonce), presented)


class LoginThrottle(FailureThrottle):
    """Failed sign-ins per client address, in the same store as the API's rate limits (Redis
    when configured, so every API process sees the same failures). A correct token is never
    throttled: a shared proxy address cannot lock the real admin out."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings.admin_login_rate,
            storage_uri=settings.resolved_rate_limit_storage,
            key_prefix=settings.redis_prefix,
            namespace="admin-login",
        )


def content_security_policy() -> str:
    """No inline script or style anywhere; media and images may come from storage hosts."""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob: https: http:",
            "media-src 'self' blob: https: http:",
            "connect-src 'self'",
            "font-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def security_headers(*, private: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if private:
        headers["Cache-Control"] = "no-store"
    return headers
