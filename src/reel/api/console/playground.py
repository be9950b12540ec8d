"""`/`: the playground for API key holders. The page only talks to the public API."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from reel.api.console.render import page
from reel.api.console.security import admin_enabled
from reel.api.deps import ServicesDep
from reel.service import pricing
from reel.types import Tier

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def playground(request: Request, services: ServicesDep) -> Response:
    catalog = services.catalog
    tiers = [
        {
            "value": tier.value,
            "size": "{}×{}".format(*pricing.frame_size(tier, pricing.Aspect.LANDSCAPE)),
            "credits": {d: pricing.price(tier, d) for d in pricing.DURATIONS},
            "engine": catalog.model_for(tier).engine,
        }
        for tier in Tier
    ]
    return page(
        request,
        "playground.html",
        admin=False,
        admin_enabled=admin_enabled(services.settings),
        tiers=tiers,
        durations=pricing.DURATIONS,
        default_duration=pricing.DEFAULT_DURATION,
        max_prompt=services.settings.max_prompt_length,
        sandbox=[t["value"] for t in tiers if t["engine"] == "sandbox"],
        all_sandbox=all(t["engine"] == "sandbox" for t in tiers),
    )
