"""Schemathesis against our own OpenAPI spec, in process: no 5xx, responses match the schema,
every error in the contract's shape. Generated image URLs never leave the machine: the resolver
is stubbed to a loopback answer, which the fetch guard refuses before any connection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from reel.api.app import create_app
from reel.config import Settings
from reel.net import fetch
from reel.service.context import Services, build_services, prepare_database
from tests.factories import make_key

_state: dict[str, object] = {}


def _app() -> FastAPI:
    if "app" not in _state:
        import tempfile
        from pathlib import Path

        root = Path(tempfile.mkdtemp(prefix="reel-fuzz-"))
        services = build_services(
            Settings(
                data_dir=root,
                rate_limit_create="100000/hour",
                rate_limit_status="100000/minute",
                max_active_tasks_per_key=100000,
            )
        )
        prepare_database(services)
        _state["services"] = services
        _state["key"] = make_key(services, credits=10**9).key
        _state["app"] = create_app(services.settings, services=services)
    return _state["app"]  # type: ignore[return-value]


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def loopback_only(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    monkeypatch.setattr(fetch, "system_resolver", loopback_only)
    yield


def _check_error_shape(response: object, path: str) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    if status < 400 or path.startswith(("/media/", "/metrics")):
        return
    body = response.json()  # type: ignore[attr-defined]
    if path.startswith("/v1/"):  # OpenAI's shape
        error = body["error"]
        assert isinstance(error["message"], str) and error["message"], body
        assert isinstance(error["type"], str) and "code" in error, body
    else:
        assert body["success"] is False and isinstance(body["errorCode"], str), body
        assert isinstance(body["error"], str) and body["error"]


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_api_fuzz(case: schemathesis.Case) -> None:
    if case.path.startswith(("/api/", "/v1/")):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_state['key']}"}
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    _check_error_shape(response, case.path)


class APIWorkflow(schema.as_state_machine()):  # type: ignore[misc]
    """Stateful: creates followed by the calls their links lead to (status, cancel, retrieve,
    content, remix, delete), each checked like the single calls above."""

    def before_call(self, case: schemathesis.Case) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {_state['key']}"}

    def validate_response(self, response, case, additional_checks=None, **kwargs):  # type: ignore[no-untyped-def]
        case.validate_response(response, checks=[not_a_server_error])
        _check_error_shape(response, case.path)


TestAPIWorkflow = APIWorkflow.TestCase
TestAPIWorkflow.settings = settings(
    max_examples=15,
    stateful_step_count=6,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def teardown_module() -> None:
    services = _state.get("services")
    if isinstance(services, Services):
        services.close()
