"""Request dependencies: services, the JSON body, the current key, rate limits."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import Depends, Request, Response

from reel.config import Settings
from reel.db.models import ApiKey
from reel.service import accounts, keys
from reel.service.context import Services
from reel.service.errors import InvalidParameter, LoginRequired
from reel.service.ratelimit import Bucket, RateLimiter


# Dependencies that only read app state are ``async def``: FastAPI runs a plain ``def``
# dependency in the thread pool, a hop that costs more than the work itself.
async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def get_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


ServicesDep = Annotated[Services, Depends(get_services)]
LimiterDep = Annotated[RateLimiter, Depends(get_limiter)]


async def get_settings_dep(services: ServicesDep) -> Settings:
    return services.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def current_key(request: Request, services: ServicesDep) -> ApiKey:
    return _authenticate(request, services, creating=False)[0]


def _authenticate(
    request: Request, services: Services, *, creating: bool
) -> tuple[ApiKey, int | None]:
    """The bearer's key, and for a creation its account's hourly limit (one read for both)."""
    token = bearer_token(request)
    if token is None:
        raise LoginRequired()
    with services.db.read() as session:
        key = keys.authenticate(session, token)
        if not creating:
            return key, None
        return key, accounts.creates_per_hour(session, key.account_id)


CurrentKey = Annotated[ApiKey, Depends(current_key)]


def count_request(limiter: RateLimiter, bucket: Bucket, key_id: str) -> dict[str, str]:
    """Count one request of the key against ``bucket``; the RateLimit headers to answer with."""
    return limiter.hit(bucket, key_id).headers()


def _limit(bucket: Bucket):
    # Authenticates and counts in one dependency: one thread-pool hop for both, and one
    # rate-limit check for the key and its account together.
    def dependency(
        request: Request, services: ServicesDep, limiter: LimiterDep, response: Response
    ) -> ApiKey:
        key, per_hour = _authenticate(request, services, creating=bucket is Bucket.CREATE)
        account = None if per_hour is None else (key.account_id, per_hour)
        response.headers.update(limiter.hit(bucket, key.id, account=account).headers())
        return key

    return dependency


CreateKey = Annotated[ApiKey, Depends(_limit(Bucket.CREATE))]
StatusKey = Annotated[ApiKey, Depends(_limit(Bucket.STATUS))]


async def json_body(request: Request, services: ServicesDep) -> dict[str, object]:
    """The body as a JSON object, size-capped; anything else is INVALID_PARAMETER."""
    cap = services.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > cap:
        raise InvalidParameter(f"request body larger than {cap} bytes", param="body")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise InvalidParameter(f"request body larger than {cap} bytes", param="body")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidParameter("request body must be valid JSON", param="body") from exc
    if not isinstance(data, dict):
        raise InvalidParameter("request body must be a JSON object", param="body")
    for name, value in data.items():
        _check_json_value(value, param=name if "\x00" not in name else "body")
    return data


#: How deeply arrays and objects may nest inside a request body (the contract needs 2).
MAX_JSON_DEPTH = 16


def _check_json_value(value: object, *, param: str) -> None:
    """Refuse what no field accepts and databases cannot store: deep nesting (later code
    recurses over bodies) and NUL characters (PostgreSQL text cannot hold them). Iterative,
    so a hostile body cannot exhaust the stack here either."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise InvalidParameter(f"{param} must not contain NUL characters", param=param)
        elif isinstance(item, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise InvalidParameter(
                    f"{param} is nested more than {MAX_JSON_DEPTH} levels deep", param=param
                )
            children = item.items() if isinstance(item, dict) else enumerate(item)
            for child_key, child in children:
                if isinstance(child_key, str) and "\x00" in child_key:
                    raise InvalidParameter(f"{param} must not contain NUL characters", param=param)
                pending.append((child, depth + 1))


JsonBody = Annotated[dict[str, object], Depends(json_body)]
