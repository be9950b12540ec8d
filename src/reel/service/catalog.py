"""The models file: named models (engine + params + concurrency), the tier → model map, and
which models users may ask for by name (and at what price)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from reel.types import Tier


class CatalogError(ValueError):
    """The models file is invalid."""


@dataclass(frozen=True, slots=True)
class ModelSpec:
    name: str
    engine: str
    params: Mapping[str, object] = field(default_factory=dict)
    concurrency: int = 1
    #: The visible mark for this model's videos: a table overriding the ``REEL_MARK_*``
    #: settings, ``False`` for none, ``None`` to follow the settings.
    mark: Mapping[str, object] | bool | None = None


@dataclass(frozen=True, slots=True)
class Offer:
    """A model users may ask for by name on ``/v1/videos`` (``public = true``)."""

    #: Credits per ``/v1`` duration (4, 8, 12 s); ``None``: the price of the costliest tier
    #: the model serves, and at least the price of the size asked for.
    price: Mapping[int, int] | None = None


#: Durations a model's own ``price`` table must cover: the ``/v1/videos`` ones.
OFFER_SECONDS = (4, 8, 12)


@dataclass(frozen=True, slots=True)
class Catalog:
    models: Mapping[str, ModelSpec]
    tiers: Mapping[Tier, str]
    #: Models reachable by name, by name. Every other model runs only the tiers it serves.
    offers: Mapping[str, Offer] = field(default_factory=dict)

    def model_for(self, tier: Tier) -> ModelSpec:
        return self.models[self.tiers[tier]]

    def tiers_served_by(self, name: str) -> tuple[Tier, ...]:
        return tuple(tier for tier, model in self.tiers.items() if model == name)

    @property
    def engines(self) -> frozenset[str]:
        return frozenset(m.engine for m in self.models.values())


def load_catalog(path: Path | None) -> Catalog:
    """Read and check a models file; ``None`` means the packaged default."""
    if path is None:
        text = resources.files("reel").joinpath("models.toml").read_text()
        source = "<packaged models.toml>"
    else:
        try:
            text = path.read_text()
        except OSError as exc:
            raise CatalogError(f"cannot read models file {path}: {exc.strerror}") from exc
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{source}: {exc}") from exc
    return parse_catalog(data, source)


def parse_catalog(data: Mapping[str, object], source: str = "<models>") -> Catalog:
    raw_models = data.get("models")
    if not isinstance(raw_models, dict) or not raw_models:
        raise CatalogError(f"{source}: needs a [models.NAME] table")
    models: dict[str, ModelSpec] = {}
    offers: dict[str, Offer] = {}
    for name, entry in raw_models.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("engine"), str):
            raise CatalogError(f'{source}: models.{name} needs engine = "..."')
        offer = _offer(entry, f"{source}: models.{name}")
        if offer is not None:
            offers[name] = offer
        entry = {k: v for k, v in entry.items() if k not in ("public", "price")}
        params = entry.get("params", {})
        concurrency = entry.get("concurrency", 1)
        if not isinstance(params, dict):
            raise CatalogError(f"{source}: models.{name}.params must be a table")
        if not isinstance(concurrency, int) or concurrency < 1:
            raise CatalogError(f"{source}: models.{name}.concurrency must be a positive integer")
        unknown = set(entry) - {"engine", "params", "concurrency", "mark"}
        if unknown:
            raise CatalogError(f"{source}: models.{name} has unknown keys {sorted(unknown)}")
        mark = entry.get("mark")
        if mark is True or not isinstance(mark, dict | bool | None):
            raise CatalogError(f"{source}: models.{name}.mark must be a table or false")
        models[name] = ModelSpec(name, entry["engine"], params, concurrency, mark)
    raw_tiers = data.get("tiers")
    if not isinstance(raw_tiers, dict):
        raise CatalogError(f"{source}: needs a [tiers] table mapping every tier to a model")
    tiers: dict[Tier, str] = {}
    for tier in Tier:
        model = raw_tiers.get(tier.value)
        if not isinstance(model, str):
            raise CatalogError(f"{source}: [tiers] has no model for {tier.value}")
        if model not in models:
            raise CatalogError(f"{source}: tier {tier.value} names unknown model {model!r}")
        tiers[tier] = model
    extra = set(raw_tiers) - {t.value for t in Tier}
    if extra:
        raise CatalogError(f"{source}: [tiers] has unknown tiers {sorted(extra)}")
    return Catalog(models, tiers, offers)


def _offer(entry: Mapping[str, object], where: str) -> Offer | None:
    """``public`` and ``price`` of a model entry: whether users may name it, at what price."""
    public = entry.get("public", False)
    price = entry.get("price")
    if not isinstance(public, bool):
        raise CatalogError(f"{where}.public must be true or false")
    if price is not None and not public:
        raise CatalogError(f"{where}.price is only for a public model (public = true)")
    if not public:
        return None
    if price is None:
        return Offer()
    expected = {str(s) for s in OFFER_SECONDS}
    if (
        not isinstance(price, dict)
        or set(price) != expected
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in price.values())
    ):
        raise CatalogError(
            f"{where}.price must give positive whole credits for each of 4, 8 and 12 seconds, "
            "e.g. price = { 4 = 30, 8 = 60, 12 = 90 }"
        )
    return Offer({int(k): v for k, v in price.items()})
