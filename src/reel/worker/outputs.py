"""A finished video between the engine and storage: content check, visible mark, C2PA signature.

In that order, so the signature covers the bytes users download. Each step is off until the
operator configures it (see docs/provenance.md); with all of them off the engine's file is
stored as it is.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Final

from PIL import Image

from reel import __version__
from reel.config import Settings
from reel.db.models import Task
from reel.engines.base import EngineOutput
from reel.media import provenance
from reel.media.mark import MarkSpec, burn_in
from reel.media.provenance import Facts, PemSigner, Signer
from reel.media.video import frame_count, sample_frames
from reel.service import lifecycle, moderation
from reel.service.context import Services
from reel.service.errors import ContentPolicyViolation, ModerationUnavailable
from reel.types import Mode

log = logging.getLogger("reel.worker")

_REFUSED: Final = "This video was refused by the content policy"
_UNCHECKED: Final = "The finished video could not be checked against the content policy"


class Withheld(Exception):
    """The video must not be delivered; the task fails with ``code``."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable


@dataclass(frozen=True, slots=True)
class Delivered:
    path: Path
    #: Operator-only facts merged into the task's hidden ``extra`` on completion.
    metadata: Mapping[str, object] = field(default_factory=dict)


class Finisher:
    """Prepares each finished video of ``models`` for delivery. Built once per worker."""

    def __init__(self, services: Services, models: Sequence[str]) -> None:
        self.services = services
        self.settings = services.settings
        self._signer = load_signer(self.settings)
        self._marks = {m: mark_for(self.settings, services.catalog.models[m].mark) for m in models}

    def finish(
        self,
        task: Task,
        lease: lifecycle.Lease,
        output: EngineOutput,
        *,
        engine: str,
        image_path: Path | None,
    ) -> Delivered:
        """The file to store and what to note on the task; raises :class:`Withheld`."""
        metadata = dict(output.metadata)
        path = output.path
        verdict = self._screen(path)
        if verdict is not None:
            earlier = (task.extra or {}).get(moderation.MODERATION)
            record = {**(earlier if isinstance(earlier, dict) else {}), "output": verdict.record()}
            if not verdict.allowed:
                with self.services.db.write() as session:
                    lifecycle.note(session, lease, moderation.MODERATION, record)
                log.info("task %s: video refused by output moderation", task.id)
                raise Withheld(ContentPolicyViolation.code, _REFUSED, retryable=False)
            metadata[moderation.MODERATION] = record
        spec = self._marks.get(task.model)
        if spec is not None:
            marked = path.with_name("marked.mp4")
            burn_in(path, marked, spec)
            path = marked
        if self._signer is not None:
            signed = path.with_name("signed.mp4")
            image = image_path if task.mode == Mode.IMAGE_TO_VIDEO else None
            facts = Facts(__version__, task.model, engine, image)
            provenance.sign_video(
                path, signed, self._signer, facts, tsa_url=self.settings.c2pa_tsa_url
            )
            path = signed
            metadata[lifecycle.PROVENANCE] = {"c2pa": "signed", "alg": self._signer.alg}
        return Delivered(path, metadata)

    def _screen(self, path: Path) -> moderation.Verdict | None:
        if not self.settings.moderation_output_url:
            return None
        try:
            return moderation.screen_frames(self.settings, _frames(path, self.settings))
        except ModerationUnavailable as exc:
            raise Withheld("GENERATION_FAILED", _UNCHECKED, retryable=True) from exc


def _frames(path: Path, settings: Settings) -> list[bytes]:
    """JPEGs of ``moderation_frames`` frames spread evenly over the video, at most 512 wide."""
    total = max(1, frame_count(path))
    wanted = settings.moderation_frames
    indices = sorted({min(total - 1, (2 * i + 1) * total // (2 * wanted)) for i in range(wanted)})
    out: list[bytes] = []
    for frame in sample_frames(path, indices):
        image = Image.fromarray(frame)
        image.thumbnail((512, 512))
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=85)
        out.append(buffer.getvalue())
    return out


def load_signer(settings: Settings) -> Signer | None:
    """The C2PA signer the settings describe; ``None`` (and one log line) when there is none."""
    cert, key = settings.c2pa_cert, settings.c2pa_key
    if not cert and key is None:
        log.info(
            "C2PA signing is off (REEL_C2PA_CERT and REEL_C2PA_KEY are not set): "
            "videos are delivered without a provenance manifest"
        )
        return None
    if not cert or key is None:
        raise ValueError("REEL_C2PA_CERT and REEL_C2PA_KEY must be set together")
    provenance.require()
    signer = PemSigner(_pem(cert), _pem(key.get_secret_value()).encode())
    log.info("C2PA signing is on (%s): every video carries a signed manifest", signer.alg)
    return signer


def _pem(value: str) -> str:
    """A PEM setting is the PEM text itself or the path of a file holding it."""
    if "-----BEGIN" in value:
        return value
    try:
        return Path(value).expanduser().read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the PEM file {value}: {exc.strerror}") from exc


_MARK_FIELDS: Final = frozenset(f.name for f in fields(MarkSpec))


def mark_for(settings: Settings, override: Mapping[str, object] | bool | None) -> MarkSpec | None:
    """A model's mark: its models-file table over the ``REEL_MARK_*`` settings, or none."""
    if override is False:
        return None
    values: dict[str, object] = {
        "text": settings.mark_text,
        "image": settings.mark_image,
        "position": settings.mark_position,
        "size": settings.mark_size,
        "opacity": settings.mark_opacity,
    }
    table = dict(override) if isinstance(override, Mapping) else {}
    unknown = set(table) - _MARK_FIELDS
    if unknown:
        raise ValueError(f"mark: unknown keys {sorted(unknown)}; known: {sorted(_MARK_FIELDS)}")
    if "text" in table:
        values["image"] = None
    if "image" in table:
        values["text"] = None
        image = Path(str(table["image"])).expanduser()
        if not image.is_absolute() and settings.models_file is not None:
            image = settings.models_file.parent / image  # like the models file's other paths
        table["image"] = image
    values.update(table)
    if values["text"] is None and values["image"] is None:
        return None
    if isinstance(values["image"], Path) and not values["image"].is_file():
        raise ValueError(f"mark: no image file at {values['image']}")
    try:
        return MarkSpec(**values)  # type: ignore[arg-type]
    except TypeError as exc:
        raise ValueError(f"mark: {exc}") from exc
