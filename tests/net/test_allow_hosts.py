"""REEL_IMAGE_FETCH_ALLOW_HOSTS: exact hosts and ports an operator trusts, and refusals that
say why (the address before the port) and where the setting is documented."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from reel.config import Settings
from reel.net import FetchError, FetchPolicy, check_url
from reel.service.context import IMAGE_HOST_HINT

PUBLIC = "93.184.215.14"


def resolve_to(ip: str):  # type: ignore[no-untyped-def]
    return lambda _host, _port: [ip]


def test_host_and_port_entries_allow_exactly_that_port() -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"images.internal:8443", "[fd00::7]:9000"}))
    _, ip = check_url(
        "https://images.internal:8443/cat.png", policy, resolver=resolve_to("10.1.2.3")
    )
    assert ip == "10.1.2.3"
    assert check_url("http://[fd00::7]:9000/a.png", policy)[1] == "fd00::7"
    for url in ("https://images.internal:8444/cat.png", "https://images.internal/cat.png"):
        with pytest.raises(FetchError, match="local or private address"):
            check_url(url, policy, resolver=resolve_to("10.1.2.3"))
    with pytest.raises(FetchError, match="local or private address"):
        check_url("https://other.internal:8443/cat.png", policy, resolver=resolve_to("10.1.2.3"))


def test_a_bare_host_entry_allows_any_port_of_that_host_only() -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"127.0.0.1"}))
    assert check_url("http://127.0.0.1:5001/x", policy)[1] == "127.0.0.1"
    with pytest.raises(FetchError):
        check_url("http://127.0.0.2:5001/x", policy)


def test_the_address_reason_is_not_hidden_by_the_port() -> None:
    with pytest.raises(FetchError, match="local or private address"):
        check_url("http://10.0.0.5:8080/cat.png", FetchPolicy())
    with pytest.raises(FetchError, match="local or private address"):
        check_url("http://localhost:8080/cat.png", FetchPolicy())
    with pytest.raises(FetchError, match=r"port is not allowed \(only 80 and 443\)"):
        check_url("http://cats.example:8080/", FetchPolicy(), resolver=resolve_to(PUBLIC))


def test_image_refusals_point_at_the_setting_and_its_docs(settings: Settings) -> None:
    from reel.service.context import build_services

    services = build_services(Settings(**{**settings.model_dump(), "image_fetch_allow_hosts": ()}))
    try:
        policy = services.fetch_policy
    finally:
        services.close()
    with pytest.raises(FetchError) as refused:
        check_url("http://192.168.1.20:8080/cat.png", policy)
    assert refused.value.message.startswith("The URL points to a local or private address.")
    assert refused.value.message.endswith(IMAGE_HOST_HINT)
    assert "REEL_IMAGE_FETCH_ALLOW_HOSTS" in IMAGE_HOST_HINT
    assert "docs/configuration.md" in IMAGE_HOST_HINT


@pytest.mark.parametrize(
    "value", ["*.internal", "10.0.0.0/8", "http://images.internal", "user@host", "a b"]
)
def test_only_exact_hosts_are_accepted(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEL_IMAGE_FETCH_ALLOW_HOSTS", value)
    with pytest.raises(ValidationError, match="not an exact host"):
        Settings()


def test_the_setting_reads_hosts_and_ports_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REEL_IMAGE_FETCH_ALLOW_HOSTS", "Images.Internal:8443, [fd00::7]:9000,cdn")
    assert Settings().image_fetch_allow_hosts == ("images.internal:8443", "[fd00::7]:9000", "cdn")
