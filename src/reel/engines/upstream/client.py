"""HTTP to one upstream: credentials, error classification, retries (tenacity).

Every failure becomes one of a few errors whose meaning the failover logic relies on:

- :class:`NothingCreated` — a submission that certainly created nothing upstream: the
  connection was refused or never established, or the upstream answered 4xx/5xx (not 504,
  which a gateway sends while the job may still be created behind it);
- :class:`RateLimited` — a 429 (a kind of ``NothingCreated``) with its ``Retry-After``;
- :class:`OutcomeUnknown` — the request went out and no usable answer came back (read timeout,
  dropped connection, 504, or a 2xx whose body makes no sense): a job may exist upstream;
- :class:`CallFailed` — a status, result or cancel call failed; ``transient`` ones are retried.

``detail`` on each is for operator logs only, with the credential scrubbed; users see fixed
sentences chosen by the engine.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import httpx
from tenacity import Retrying, retry_if_exception, stop_after_attempt, stop_after_delay
from tenacity.wait import wait_exponential

from reel import __version__
from reel.engines.upstream.health import retry_after
from reel.engines.upstream.spec import UpstreamSpec

JSONObject = dict[str, Any]

#: Retry-After assumed when a 429 carries none.
DEFAULT_RETRY_AFTER = 5.0


class UpstreamError(Exception):
    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NothingCreated(UpstreamError):
    def __init__(self, detail: str, *, status: int | None = None) -> None:
        super().__init__(detail)
        self.status = status

    @property
    def worth_retrying(self) -> bool:
        """Connection refused or a server error may pass; another 4xx will not."""
        return self.status is None or self.status >= 500


class RateLimited(NothingCreated):
    def __init__(self, detail: str, *, retry_after: float) -> None:
        super().__init__(detail, status=429)
        self.retry_after = retry_after


class OutcomeUnknown(UpstreamError):
    pass


class CallFailed(UpstreamError):
    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        transient: bool = True,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.transient = transient
        self.retry_after = retry_after


class UpstreamClient:
    """A sync httpx client for one upstream's configured servers. Never follows redirects."""

    def __init__(
        self,
        spec: UpstreamSpec,
        secret: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"User-Agent": f"reel/{__version__}", **spec.headers}
        if secret:
            headers["Authorization"] = f"{spec.auth_scheme} {secret}".strip()
        self._secret = secret
        self.spec = spec
        self.http = httpx.Client(
            timeout=httpx.Timeout(spec.request_timeout),
            headers=headers,
            follow_redirects=False,
            transport=transport,
        )

    def close(self) -> None:
        self.http.close()

    def scrub(self, text: str) -> str:
        if self._secret:
            text = text.replace(self._secret, "***")
        return text[:500]

    def _describe(self, response: httpx.Response) -> str:
        body = response.text if response.headers.get("content-type", "").find("json") >= 0 else ""
        return self.scrub(
            f"{response.request.method} {response.request.url} → {response.status_code} {body}"
        )

    # --- submissions: never retried blindly ------------------------------------------------
    def submit(self, method: str, url: str, **kwargs: Any) -> JSONObject:
        """Send a request that creates a job; classify what could have happened."""
        try:
            response = self.http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise NothingCreated(
                self.scrub(f"{method} {url}: {type(exc).__name__}: {exc}")
            ) from exc
        except httpx.HTTPError as exc:  # sent (or partly sent), answer lost
            raise OutcomeUnknown(
                self.scrub(f"{method} {url}: {type(exc).__name__}: {exc}")
            ) from exc
        if response.status_code == 429:
            raise RateLimited(
                self._describe(response),
                retry_after=retry_after(
                    response.headers.get("retry-after"), default=DEFAULT_RETRY_AFTER
                ),
            )
        if response.status_code == 504:
            raise OutcomeUnknown(self._describe(response))
        if response.status_code >= 400:
            raise NothingCreated(self._describe(response), status=response.status_code)
        try:
            return _object(response)
        except ValueError as exc:
            raise OutcomeUnknown(f"{self._describe(response)}: {exc}") from exc

    # --- idempotent calls ------------------------------------------------------------------
    def call(
        self, method: str, url: str, *, ok: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """One status/result/cancel call. 2xx and the statuses in ``ok`` are returned."""
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise CallFailed(self.scrub(f"{method} {url}: {type(exc).__name__}: {exc}")) from exc
        if response.is_success or response.status_code in ok:
            return response
        if response.status_code == 429:
            raise CallFailed(
                self._describe(response),
                status=429,
                retry_after=retry_after(
                    response.headers.get("retry-after"), default=DEFAULT_RETRY_AFTER
                ),
            )
        raise CallFailed(
            self._describe(response),
            status=response.status_code,
            transient=response.status_code >= 500 or response.status_code == 408,
        )

    def call_json(self, method: str, url: str, **kwargs: Any) -> JSONObject:
        response = self.call(method, url, **kwargs)
        try:
            return _object(response)
        except ValueError as exc:
            raise CallFailed(f"{self._describe(response)}: {exc}") from exc


def _object(response: httpx.Response) -> JSONObject:
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError("the body is not JSON") from exc
    if not isinstance(data, dict):
        raise ValueError("the body is not a JSON object")
    return data


# --- retry policies ------------------------------------------------------------------------


def _wait_for(exc: BaseException | None) -> float | None:
    if isinstance(exc, RateLimited):
        return exc.retry_after
    if isinstance(exc, CallFailed) and exc.retry_after is not None:
        return exc.retry_after
    return None


class _HonourRetryAfter:
    """Wait what the upstream asked for (``Retry-After``), else back off exponentially."""

    def __init__(self, backoff: wait_exponential) -> None:
        self._backoff = backoff

    def __call__(self, retry_state: Any) -> float:
        outcome = retry_state.outcome
        asked = _wait_for(outcome.exception() if outcome is not None else None)
        return asked if asked is not None else float(self._backoff(retry_state))


def submit_retrying(spec: UpstreamSpec, sleep: Callable[[float], None]) -> Retrying:
    """Retries for a submission that certainly created nothing and may succeed if repeated."""

    def retryable(exc: BaseException) -> bool:
        if isinstance(exc, RateLimited):
            return exc.retry_after <= spec.rate_limit_wait
        return isinstance(exc, NothingCreated) and exc.worth_retrying

    return Retrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(1 + spec.submit_retries),
        wait=_HonourRetryAfter(wait_exponential(multiplier=0.5, max=5)),
        sleep=sleep,
        reraise=True,
    )


def call_retrying(spec: UpstreamSpec, sleep: Callable[[float], None]) -> Retrying:
    """Retries for status/result calls: transient failures, until the error budget is spent."""
    return Retrying(
        retry=retry_if_exception(lambda exc: isinstance(exc, CallFailed) and exc.transient),
        stop=stop_after_delay(spec.poll_error_budget),
        wait=_HonourRetryAfter(
            wait_exponential(multiplier=spec.poll_interval, min=spec.poll_interval, max=15)
        ),
        sleep=sleep,
        reraise=True,
    )


def same_origin(url: str, servers: Iterable[str]) -> bool:
    """Whether ``url`` points at one of the operator's configured servers (scheme, host, port)."""
    try:
        target = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return False
    for server in servers:
        base = httpx.URL(server)
        if (target.scheme, target.host, target.port) == (base.scheme, base.host, base.port):
            return True
    return False
