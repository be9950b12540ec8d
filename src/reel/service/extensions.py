"""Extensions and edits of a video: the task to create, its price and its limits.

- An **extension** is a new video: the source followed by a new segment of 4–20 s that
  continues from the source's last frame (the worker joins the two, sound cross-faded). It is
  priced as the new seconds at the source's tier. A chain holds at most
  :data:`MAX_EXTENSIONS` extensions and :data:`MAX_CHAIN_SECONDS` seconds.
- An **edit** is a pass over the whole source keeping its length and size, priced as a create
  of the source's seconds.

Whether a model can do either is its engine's to say (``Capabilities.extend``/``edit``/
``references`` in :mod:`reel.engines.base`, checked against the model's own files). Workers
advertise it per model (``workers.operations``); the API, which never loads an engine, reads it
from the live workers serving the model, or, while none is up, from :data:`ENGINE_OPERATIONS`
(what some model of each engine can do; a test holds it to the engines), and refuses before
anything is charged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from reel.media.errors import MediaError
from reel.media.previews import last_frame_png
from reel.service import fleet, pricing
from reel.service.catalog import Catalog
from reel.service.context import Services
from reel.service.errors import GenerationFailed, InvalidParameter
from reel.service.sources import Source
from reel.service.tasks import NewTask
from reel.types import Aspect, Mode, Tier

__all__ = [
    "ENGINE_OPERATIONS",
    "EXTENSION_SECONDS",
    "MAX_CHAIN_SECONDS",
    "MAX_EXTENSIONS",
    "OPERATION",
    "edit_command",
    "extension_command",
    "require",
]

Op = Literal["extend", "edit", "references"]

#: What each engine does besides generating, as its ``check()`` Capabilities declare it for some
#: model. Diffusers engines extend when their model does image-to-video (every tier-serving one
#: must); a Wan text-to-video model (2.1 T2V, 2.2 TI2V) edits and a Wan VACE model uses
#: characters; every LTX-Video and LTX-2 model edits. The upstream engines (fal, Replicate,
#: OpenAI-compatible) do none of these.
ENGINE_OPERATIONS: Final[Mapping[str, frozenset[Op]]] = {
    "sandbox": frozenset({"extend", "edit", "references"}),
    "wan": frozenset({"extend", "edit", "references"}),
    "ltx": frozenset({"extend", "edit"}),
    "ltx2": frozenset({"extend", "edit"}),
}
_VERB: Final[Mapping[Op, str]] = {
    "extend": "extend videos",
    "edit": "edit videos",
    "references": "use characters (reference conditioning)",
}

EXTENSION_SECONDS: Final = (4, 8, 12, 16, 20)
MAX_EXTENSIONS: Final = 6
MAX_CHAIN_SECONDS: Final = 120

#: ``Task.extra``: ``"extension"`` or ``"edit"`` (absent for a plain create or a remix).
OPERATION: Final = "videoOp"
#: ``Task.extra``: the id of the video extended or edited (absent for an upload).
SOURCE_ID: Final = "sourceVideoId"
#: ``Task.extra``: the new segment's seconds of an extension.
SEGMENT_SECONDS: Final = "segmentSeconds"
#: ``Task.extra``: how many extensions the chain holds, this one included.
EXTENSIONS: Final = "extensions"
#: Every ``Task.extra`` key above: a remix or retry of such a task does not carry them.
KEYS: Final = frozenset({OPERATION, SOURCE_ID, SEGMENT_SECONDS, EXTENSIONS})


def require(services: Services, model: str | None, tier: Tier, op: Op) -> None:
    """Refuse (400) unless the model that would run does ``op``: as its live workers advertise
    it (their engines checked the model's own files), else as its engine can."""
    catalog = services.catalog
    name = model or catalog.tiers[tier]
    engine = catalog.models[name].engine
    with services.db.read() as session:
        able = fleet.operations_of(session, services.settings, name)
    if able is None:
        able = ENGINE_OPERATIONS.get(engine, frozenset())
    if op not in able:
        raise InvalidParameter(
            f"This model ({engine} engine) cannot {_VERB[op]}", param="model", engine=engine
        )


def price(catalog: Catalog, model: str | None, tier: Tier, seconds: int) -> int:
    """Credits for ``seconds`` at ``tier`` (or the model's own price table), per 4 s."""
    offer = catalog.offers.get(model) if model is not None else None
    table = offer.price if offer is not None and offer.price is not None else None
    if table is not None and seconds in table:
        return table[seconds]
    if table is None and seconds in pricing.OPENAI_SECONDS:
        return pricing.openai_price(tier, seconds)
    four = table[4] if table is not None else pricing.openai_price(tier, 4)
    return -(-four * seconds // 4)  # per 4 s, rounded up


def extension_command(services: Services, source: Source, prompt: str, seconds: int) -> NewTask:
    """The task of an extension: refused before charging beyond the chain's limits."""
    catalog = services.catalog
    require(services, source.model, source.tier, "extend")
    done = 0
    if source.task is not None:
        count = (source.task.extra or {}).get(EXTENSIONS)
        done = count if isinstance(count, int) else 0
    if done >= MAX_EXTENSIONS:
        raise InvalidParameter(
            f"A video can be extended at most {MAX_EXTENSIONS} times", param="video"
        )
    total = source.seconds + seconds
    if total > MAX_CHAIN_SECONDS:
        raise InvalidParameter(
            f"An extended video is at most {MAX_CHAIN_SECONDS} s long "
            f"({source.seconds} s + {seconds} s asked)",
            param="seconds",
        )
    try:
        start = last_frame_png(source.path)
    except MediaError as exc:
        raise GenerationFailed("The source video could not be read") from exc
    return _command(
        source,
        prompt,
        mode=Mode.IMAGE_TO_VIDEO,
        duration_s=total,
        credits=price(catalog, source.model, source.tier, seconds),
        extra={
            OPERATION: "extension",
            SEGMENT_SECONDS: seconds,
            EXTENSIONS: done + 1,
        },
        image_data=start,
    )


def edit_command(services: Services, source: Source, prompt: str) -> NewTask:
    catalog = services.catalog
    require(services, source.model, source.tier, "edit")
    return _command(
        source,
        prompt,
        mode=Mode.TEXT_TO_VIDEO,
        duration_s=source.seconds,
        credits=price(catalog, source.model, source.tier, source.seconds),
        extra={OPERATION: "edit"},
        image_data=None,
    )


def _command(
    source: Source,
    prompt: str,
    *,
    mode: Mode,
    duration_s: int,
    credits: int,
    extra: dict[str, object],
    image_data: bytes | None,
) -> NewTask:
    if source.task is not None:
        extra[SOURCE_ID] = source.task.id
    return NewTask(
        prompt=prompt,
        mode=mode,
        tier=source.tier,
        aspect=Aspect.LANDSCAPE if source.width > source.height else Aspect.PORTRAIT,
        duration_s=duration_s,
        surface="openai",
        credits=credits,
        extra={"openaiModel": source.openai_model, "size": source.size, **extra},
        model=source.model,
        size=(source.width, source.height),
        image_data=image_data,
        image_param="video",
        source_video=source.path,
    )
