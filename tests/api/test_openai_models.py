"""Models asked for by name on /v1/videos: only public ones, never below the price of the tiers
they serve (or at their own price), and no error ever names the operator's other models."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from reel.config import Settings
from reel.service.catalog import CatalogError, parse_catalog
from reel.service.context import Services
from tests.api.test_openai_contract import assert_openai_error, balance
from tests.conftest import auth
from tests.factories import make_key

V1 = "/v1/videos"

MODELS = """
[models.tier-a-internal]
engine = "sandbox"

[models.big-internal]     # serves both pro tiers, public
engine = "sandbox"
public = true

[models.own-priced]       # public, with its own price
engine = "sandbox"
public = true
price = { 4 = 30, 8 = 60, 12 = 90 }

[models.open-model]       # public, serves no tier
engine = "sandbox"
public = true

[models.secret-internal]  # serves no tier, not public
engine = "sandbox"

[tiers]
sora2 = "tier-a-internal"
sora2-pro-standard = "big-internal"
sora2-pro-high = "big-internal"
"""
PRIVATE = ("tier-a-internal", "secret-internal", "big-internal", "own-priced", "open-model")


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    path = tmp_path / "models.toml"
    path.write_text(MODELS)
    return Settings(**{**settings.model_dump(), "models_file": path})


PRICES = [
    # Serves sora2-pro-high: priced like it, whatever the size asked for (not 2 / 6).
    ("big-internal", "720x1280", "4", 48),
    ("big-internal", "1280x720", "12", 144),
    ("big-internal", "1792x1024", "8", 96),
    ("own-priced", "720x1280", "8", 60),
    ("own-priced", "1792x1024", "12", 90),
    # Serves no tier: priced by the size's tier.
    ("open-model", "720x1280", "4", 2),
    ("open-model", "1024x1792", "4", 48),
    # The OpenAI names keep their prices.
    ("sora-2", "720x1280", "4", 2),
    ("sora-2-pro", "1792x1024", "4", 48),
]


def test_public_models_are_priced_at_least_at_their_tiers(
    client: TestClient, services: Services
) -> None:
    for model, size, seconds, price in PRICES:
        issued = make_key(services, credits=1000)
        r = client.post(
            V1,
            json={"model": model, "prompt": "A fox", "size": size, "seconds": seconds},
            headers=auth(issued.key),
        )
        assert r.status_code == 200, r.text
        assert r.json()["model"] == model
        assert balance(services, issued.id) == 1000 - price, (model, size, seconds)


def test_private_and_unknown_models_are_refused_without_naming_any(
    client: TestClient, services: Services
) -> None:
    issued = make_key(services, credits=100)
    for model, form in itertools.product(
        ("tier-a-internal", "secret-internal", "dall-e", "x" * 300), (False, True)
    ):
        body = {"model": model, "prompt": "x"}
        r = (
            client.post(V1, data=body, headers=auth(issued.key))
            if form
            else client.post(V1, json=body, headers=auth(issued.key))
        )
        err = assert_openai_error(r, 400, "invalid_value")
        assert err["param"] == "model"
        assert "sora-2" in str(err["message"])
        assert not any(name in r.text for name in PRIVATE), r.text
    assert balance(services, issued.id) == 100


def test_models_file_checks_public_and_price() -> None:
    base = {"tiers": {"sora2": "m", "sora2-pro-standard": "m", "sora2-pro-high": "m"}}
    ok = parse_catalog({**base, "models": {"m": {"engine": "sandbox"}}})
    assert ok.offers == {}  # nothing is reachable by name unless marked public
    priced = parse_catalog(
        {
            **base,
            "models": {
                "m": {"engine": "sandbox", "public": True, "price": {"4": 1, "8": 2, "12": 3}}
            },
        }
    )
    assert priced.offers["m"].price == {4: 1, 8: 2, 12: 3}
    for bad in (
        {"public": "yes"},
        {"price": {"4": 1, "8": 2, "12": 3}},  # a price without public
        {"public": True, "price": {"4": 1, "8": 2}},  # a missing length
        {"public": True, "price": {"4": 0, "8": 2, "12": 3}},
        {"public": True, "price": 5},
    ):
        with pytest.raises(CatalogError):
            parse_catalog({**base, "models": {"m": {"engine": "sandbox", **bad}}})
