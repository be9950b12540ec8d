"""The ``params`` of an upstream model, as the models file spells them, checked at load time.

A model either names one upstream (``engine = "fal"`` with that upstream's fields directly in
``params``) or lists several in order of preference for failover (``params.upstreams``, each
with its ``kind``). See docs/upstreams.md for every field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from reel.engines.base import Capabilities, EngineConfigError
from reel.engines.upstream.mapping import check_templates
from reel.types import Mode

Kind = Literal["fal", "replicate", "openai_videos"]
ImageTransport = Literal["url", "data_uri", "upload"]

DEFAULT_BASE_URL: Final[Mapping[str, str]] = {
    "fal": "https://queue.fal.run",
    "replicate": "https://api.replicate.com",
}
DEFAULT_AUTH_SCHEME: Final[Mapping[str, str]] = {
    "fal": "Key",
    "replicate": "Bearer",
    "openai_videos": "Bearer",
}
_LANDSCAPE_PORTRAIT: Final = {"from": "aspect", "map": {"landscape": "16:9", "portrait": "9:16"}}
DEFAULT_INPUT: Final[Mapping[str, Mapping[str, object]]] = {
    "fal": {"prompt": "{prompt}", "image_url": "{image_url}", "aspect_ratio": _LANDSCAPE_PORTRAIT},
    "replicate": {"prompt": "{prompt}", "image": "{image_url}", "seed": "{seed}"},
    "openai_videos": {"prompt": "{prompt}", "size": "{size}", "seconds": "{seconds}"},
}
DEFAULT_RESULT_PATH: Final[Mapping[str, str]] = {"fal": "video.url", "replicate": "output"}
#: The input field that asks a model for sound (vLLM-Omni's ``generate_sound``).
DEFAULT_SOUND_FIELD: Final[Mapping[str, str]] = {
    "fal": "generate_audio",
    "replicate": "generate_audio",
    "openai_videos": "generate_sound",
}


class Price(BaseModel):
    """What one run costs upstream, to record an estimate on each task (operator's currency)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_run: float = Field(default=0.0, ge=0)
    #: Per second the upstream reports it ran (Replicate ``predict_time``), else measured.
    per_second: float = Field(default=0.0, ge=0)
    #: Per second of video returned.
    per_video_second: float = Field(default=0.0, ge=0)
    currency: str = "USD"


class UpstreamSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Kind
    #: Shown in logs and recorded on tasks; default ``kind:endpoint`` or ``kind:server``.
    name: str = ""
    base_url: str = ""
    #: Several servers of one model (OpenAI-compatible servers): Reel spreads jobs over them.
    pool: tuple[str, ...] = ()
    #: Jobs this Reel keeps on one pool server at a time.
    per_server: int = Field(default=1, ge=1)
    #: fal: app id (``fal-ai/wan/v2.2-a14b/text-to-video``); Replicate: ``owner/name``,
    #: ``owner/name:version`` or ``deployments/owner/name``; unused for OpenAI-compatible.
    endpoint: str = ""
    #: The same for image-to-video tasks; default: ``endpoint``.
    image_endpoint: str = ""
    #: Environment variable holding the API key; none for servers without auth.
    credentials_env: str | None = None
    auth_scheme: str = ""
    #: Extra static request headers (no secrets: use ``credentials_env``).
    headers: dict[str, str] = Field(default_factory=dict)
    #: Upstream field → template (see mapping.py); default: a minimal per-kind mapping.
    input: dict[str, object] = Field(default_factory=dict)
    #: How the start image reaches the upstream: Reel's signed URL (needs ``REEL_PUBLIC_URL``),
    #: a base64 ``data:`` URI in the input, or a multipart file (OpenAI-compatible only).
    image: ImageTransport = "url"
    #: Multipart field of the uploaded start image (``image = "upload"``).
    image_field: str = "input_reference"
    #: Dotted path of the video URL in the result (``video.url``; list items by index).
    result_path: str = ""
    modes: tuple[Mode, ...] = (Mode.TEXT_TO_VIDEO, Mode.IMAGE_TO_VIDEO)
    #: Whole-second lengths the upstream model makes (``[5, 10]``); empty: any length asked
    #: for. A task longer than all of them is never sent to it (a shorter one may be: map its
    #: ``{duration}`` to a length the model makes in ``input``), and a tier selling a length
    #: no upstream of its model reaches is refused when a worker starts.
    durations: tuple[int, ...] = ()
    #: The model can make sound: ask for it (``sound_field = true`` in every request). The
    #: result is stored as delivered, with its audio track.
    sound: bool = False
    #: The input field that turns sound on; default per kind (``generate_sound`` for
    #: OpenAI-compatible servers such as vLLM-Omni, ``generate_audio`` for fal and Replicate).
    sound_field: str = ""
    #: Frame rate behind the ``{fps}`` and ``{num_frames}`` variables.
    fps: int = Field(default=24, ge=1, le=120)
    poll_interval: float = Field(default=2.0, gt=0)
    #: fal: pass Reel's signed callback link (``fal_webhook``, needs ``REEL_PUBLIC_URL``), so a
    #: job's end wakes the worker at once; status is then asked only every
    #: ``webhook_poll_interval`` seconds otherwise (a lost callback costs at most that long).
    webhook: bool = False
    webhook_poll_interval: float = Field(default=30.0, gt=0)
    #: Seconds a job may take upstream, from submission to result, before Reel cancels it.
    timeout: float = Field(default=900.0, gt=0)
    #: Seconds for one HTTP call.
    request_timeout: float = Field(default=30.0, gt=0)
    #: Extra submissions after one that certainly created nothing (connection refused, 5xx).
    submit_retries: int = Field(default=1, ge=0, le=5)
    #: Longest ``Retry-After`` Reel waits out on this upstream before trying the next one.
    rate_limit_wait: float = Field(default=10.0, ge=0)
    #: Consecutive failures that open the circuit breaker, and how long it stays open.
    failure_threshold: int = Field(default=3, ge=1)
    cooldown: float = Field(default=60.0, gt=0)
    #: Seconds of polling errors in a row after which the job counts as lost.
    poll_error_budget: float = Field(default=60.0, gt=0)
    #: Typical run time, for a progress estimate when the upstream reports none.
    expected_seconds: float = Field(default=120.0, gt=0)
    #: Replicate: hold the create request open up to this many seconds (``Prefer: wait``).
    prefer_wait: int = Field(default=0, ge=0, le=60)
    #: After a submission whose answer was lost, look the job up in the upstream's job list.
    lookup: bool = True
    price: Price = Field(default_factory=Price)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: object) -> object:
        """Fill per-kind defaults, so every later reader sees complete values."""
        if not isinstance(data, Mapping) or data.get("kind") not in DEFAULT_AUTH_SCHEME:
            return data
        d = dict(data)
        kind = str(d["kind"])
        base = str(d.get("base_url") or DEFAULT_BASE_URL.get(kind, "")).rstrip("/")
        pool = d.get("pool") or ([base] if base else [])
        if isinstance(pool, list | tuple):
            pool = [str(server).rstrip("/") for server in pool]
            base = base or (pool[0] if pool else "")
        d["base_url"], d["pool"] = base, pool
        d.setdefault("image", "upload" if kind == "openai_videos" else "url")
        d.setdefault("auth_scheme", DEFAULT_AUTH_SCHEME[kind])
        d.setdefault("input", dict(DEFAULT_INPUT[kind]))
        d.setdefault("result_path", DEFAULT_RESULT_PATH.get(kind, ""))
        d["sound_field"] = d.get("sound_field") or DEFAULT_SOUND_FIELD[kind]
        if d.get("sound") is True and isinstance(d["input"], Mapping):
            d["input"] = {**d["input"], d["sound_field"]: True}
        endpoint = str(d.get("endpoint") or "")
        d.setdefault("image_endpoint", endpoint)
        d.setdefault("name", f"{kind}:{endpoint or base}")
        return d

    @model_validator(mode="after")
    def _check(self) -> UpstreamSpec:
        if not self.pool:
            raise ValueError(f"a {self.kind} upstream needs base_url or pool")
        for server in self.pool:
            if not server.startswith(("http://", "https://")):
                raise ValueError(f"{server!r} is not an http(s) URL")
        if self.kind in ("fal", "replicate") and not self.endpoint:
            raise ValueError(f"a {self.kind} upstream needs endpoint")
        if self.webhook and self.kind != "fal":
            raise ValueError("webhook = true is for fal upstreams only")
        if self.image == "upload" and self.kind != "openai_videos":
            raise ValueError('image = "upload" is for OpenAI-compatible upstreams only')
        check_templates(self.input)
        return self

    def endpoint_for(self, mode: Mode) -> str:
        return self.image_endpoint if mode == Mode.IMAGE_TO_VIDEO else self.endpoint

    def makes(self, mode: Mode, duration_s: float) -> bool:
        """Whether a task of this mode and length may be sent here."""
        return mode in self.modes and (
            not self.durations or max(self.durations) >= round(duration_s)
        )


class UpstreamParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The engine name shown to users in task status; default: the models-file engine name.
    label: str = ""
    upstreams: tuple[UpstreamSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> UpstreamParams:
        names = [u.name for u in self.upstreams]
        if len(set(names)) != len(names):
            raise ValueError("upstream names must be unique within a model")
        return self

    def capabilities(self) -> Capabilities:
        """What the model can do with failover: a mode or a length any upstream serves."""
        durations: set[int] | None = set()
        for spec in self.upstreams:
            if durations is not None:
                durations = None if not spec.durations else durations | set(spec.durations)
        return Capabilities(
            text_to_video=any(Mode.TEXT_TO_VIDEO in u.modes for u in self.upstreams),
            image_to_video=any(Mode.IMAGE_TO_VIDEO in u.modes for u in self.upstreams),
            durations=None if durations is None else frozenset(durations),
        )


def parse_params(params: Mapping[str, object], *, default_kind: Kind | None) -> UpstreamParams:
    """Check a model's ``params``; ``default_kind`` fills in ``kind`` (``engine = "fal"``)."""
    data = dict(params)
    label = data.pop("label", "")
    if "upstreams" in data:
        raw = data.pop("upstreams")
        if data:
            raise EngineConfigError(
                f"params has both upstreams and single-upstream fields: {sorted(data)}"
            )
        entries = raw if isinstance(raw, list) else [raw]
    else:
        entries = [data]
    upstreams = []
    for entry in entries:
        if isinstance(entry, Mapping) and default_kind and "kind" not in entry:
            entry = {**entry, "kind": default_kind}
        upstreams.append(entry)
    try:
        return UpstreamParams.model_validate({"label": label, "upstreams": upstreams})
    except ValidationError as exc:
        raise EngineConfigError(f"invalid upstream params: {_explain(exc)}") from None
    except EngineConfigError as exc:
        raise EngineConfigError(f"invalid upstream params: {exc.message}") from None


def _explain(exc: ValidationError) -> str:
    parts = []
    errors = exc.errors(include_url=False)
    if len(errors) > 1:  # a bad entry also leaves the list "too short"; say only what is wrong
        errors = [e for e in errors if e["type"] != "too_short"] or errors
    for err in errors:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "; ".join(parts)
