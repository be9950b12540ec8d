"""Settings: the one place that reads the environment (prefix ``REEL_``)."""

from __future__ import annotations

import os
import re
import secrets
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Literal

from platformdirs import user_data_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[tuple[str, ...], NoDecode]
#: An allow-list entry: a host name, IPv4 or bracketed IPv6 literal, optionally ``:port``.
_ALLOW_ENTRY = re.compile(
    r"^(?:[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_.])?"  # a name or an IPv4 literal
    r"|\[[0-9A-Fa-f:.]+\]"  # a bracketed IPv6 literal
    r"|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+)"  # a bare IPv6 literal (then no port)
    r"(?::[0-9]{1,5})?$"
)

#: Shortest signing key accepted: an empty or short key makes media links and webhook
#: signatures forgeable.
MIN_SECRET_LENGTH = 32
#: Shortest admin token accepted (the console's sign-in is only as strong as its token).
MIN_ADMIN_TOKEN_LENGTH = 16
_WEAK_SECRET = (
    f"REEL_SECRET_KEY must be at least {MIN_SECRET_LENGTH} random characters "
    "(for example `python -c 'import secrets; print(secrets.token_urlsafe(48))'`), "
    "or unset to have one generated into the data dir"
)


class Settings(BaseSettings):
    """Everything configurable. Built once per process and passed down."""

    model_config = SettingsConfigDict(env_prefix="REEL_", extra="ignore", frozen=True)

    # --- storage of state -------------------------------------------------------------
    #: Where the SQLite database, media and the generated signing key live. Default: the
    #: per-user data dir (``~/.local/share/reel`` on Linux), whatever the working directory.
    data_dir: Path = Field(default_factory=lambda: user_data_path("reel", appauthor=False))
    #: SQLAlchemy URL; default: SQLite file inside ``data_dir``.
    database_url: str | None = None
    #: Signs media URLs and webhook bodies; at least 32 characters. Generated into
    #: ``data_dir/secret_key`` when unset.
    secret_key: SecretStr | None = None
    #: Absolute base URL clients reach this service at; default: taken from each request.
    public_url: str | None = None
    #: Seconds to wait for a locked SQLite database before answering 503.
    db_busy_timeout: float = Field(default=5.0, gt=0)

    # --- models -----------------------------------------------------------------------
    #: TOML models file; default: the packaged file serving every tier with the sandbox.
    models_file: Path | None = None

    # --- limits -----------------------------------------------------------------------
    rate_limit_create: str = "100/hour"
    rate_limit_status: str = "120/minute"
    #: ``limits`` storage URI; ``memory://`` for one API process, ``redis://…`` for many.
    rate_limit_storage: str = "memory://"
    max_active_tasks_per_key: int = Field(default=10, ge=1)
    max_prompt_length: int = Field(default=4000, ge=1)
    max_image_urls: int = Field(default=4, ge=1)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)

    # --- image fetching ---------------------------------------------------------------
    #: Trusted internal image hosts fetched despite non-public addresses: ``host:port``
    #: entries (exact name or IP, exact port); a bare ``host`` allows it on any port. Off by
    #: default; see docs/configuration.md for the risk.
    image_fetch_allow_hosts: CommaList = ()
    image_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    #: Largest start image, in pixels (16 MP: far above the largest tier's 2 MP).
    image_max_pixels: int = Field(default=16_000_000, ge=1)
    image_fetch_timeout: float = Field(default=5.0, gt=0)
    #: Start images downloaded / decoded at once by one API process; more are refused (503).
    image_fetch_concurrency: int = Field(default=8, ge=1)
    image_decode_concurrency: int = Field(default=2, ge=1)
    #: Start images one API key may have in progress at once; more are refused (429).
    image_inflight_per_key: int = Field(default=2, ge=1)
    #: Failed image downloads allowed per key (``limits`` notation), per API process.
    image_fetch_failures: str = "20/minute"

    # --- task lifecycle ---------------------------------------------------------------
    max_queue_wait: float = Field(default=3600.0, gt=0)
    task_time_limit: float = Field(default=1800.0, gt=0)
    lease_seconds: float = Field(default=60.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    reaper_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=3, ge=1)
    poll_seconds: float = Field(default=0.2, gt=0)
    #: Seconds a draining worker waits for its running task to reach a step boundary.
    drain_seconds: float = Field(default=20.0, ge=0)

    # --- media ------------------------------------------------------------------------
    media_url_ttl: int = Field(default=24 * 3600, ge=60)

    # --- provenance: C2PA manifests and a visible mark (docs/provenance.md) ---------------
    #: C2PA signing certificate chain, PEM, leaf first (a file path or the PEM text). With
    #: ``c2pa_key``, every delivered video carries a signed manifest; unset: none.
    c2pa_cert: str | None = None
    #: The leaf certificate's private key, PEM (a file path or the PEM text).
    c2pa_key: SecretStr | None = None
    #: RFC 3161 timestamp authority for signatures (keeps them valid after the cert expires).
    c2pa_tsa_url: str | None = None
    #: A visible mark on every video: text, or a PNG file. Off when both are unset; a model
    #: can override these in the models file (``mark = {...}`` or ``mark = false``).
    mark_text: str | None = None
    mark_image: Path | None = None
    mark_position: Literal["top-left", "top-right", "bottom-left", "bottom-right", "center"] = (
        "bottom-right"
    )
    #: The mark's height as a fraction of the frame's shorter side.
    mark_size: float = Field(default=0.06, gt=0, le=1)
    mark_opacity: float = Field(default=0.7, ge=0, le=1)

    # --- moderation (off unless a blocklist or an endpoint is set) -----------------------
    #: Text file of blocked words and phrases, one a line (``#`` comments); matched on whole
    #: words, case-insensitively, whitespace-normalized.
    moderation_blocklist: Path | None = None
    #: An endpoint speaking OpenAI's ``POST /v1/moderations``, asked about every prompt.
    moderation_url: str | None = None
    #: The same shape, asked about frames sampled from each finished video.
    moderation_output_url: str | None = None
    moderation_api_key: SecretStr | None = None
    #: ``model`` sent to the endpoint (e.g. ``omni-moderation-latest``); omitted when unset.
    moderation_model: str | None = None
    moderation_timeout: float = Field(default=5.0, gt=0)
    #: When the endpoint is down or answers nonsense: ``refuse`` the request, or ``allow`` it.
    moderation_when_down: Literal["refuse", "allow"] = "refuse"
    #: Hosts of the moderation endpoints allowed on private addresses and any port (an
    #: operator's own guard model); public HTTPS endpoints need no entry.
    moderation_allow_hosts: CommaList = ()
    #: Frames sampled from each finished video for ``moderation_output_url``.
    moderation_frames: int = Field(default=4, ge=1, le=32)

    # --- upstream engines (fal.ai, Replicate, OpenAI-compatible /v1/videos) ---------------
    #: Test-only: hosts (any port) allowed as upstream result URLs despite non-public addresses.
    upstream_fetch_allow_hosts: CommaList = ()
    #: Largest result video Reel downloads from an upstream.
    upstream_download_max_bytes: int = Field(default=512 * 1024 * 1024, ge=1024)
    #: Total deadline for downloading one result video.
    upstream_download_timeout: float = Field(default=300.0, gt=0)

    # --- sandbox engine ---------------------------------------------------------------
    sandbox_profile: Literal["full", "tiny"] = "full"
    sandbox_delay: float = Field(default=1.0, ge=0)
    sandbox_fail_rate: float = Field(default=0.0, ge=0, le=1)
    sandbox_fps: int = Field(default=24, ge=8, le=60)

    # --- web console -----------------------------------------------------------------
    #: Serve the playground page at ``/`` (it only talks to the public API).
    console: bool = True
    #: Enables ``/admin``; exchanged at its sign-in form for a session cookie. Off when unset.
    admin_token: SecretStr | None = None
    #: Lifetime of an admin session cookie, in seconds.
    admin_session_seconds: int = Field(default=8 * 3600, ge=60)
    #: Failed admin sign-ins allowed per client address (``limits`` notation).
    admin_login_rate: str = "10/minute"

    # --- processes --------------------------------------------------------------------
    workers: int = Field(default=1, ge=0)
    log_level: str = "info"

    # --- integrations: webhooks, idempotency, retention ----------------------------------
    #: Seconds a completed video's files are kept; then the sweep deletes them.
    video_retention: float = Field(default=7 * 24 * 3600, gt=0)
    #: How long an ``Idempotency-Key`` remembers its first response.
    idempotency_ttl: float = Field(default=24 * 3600, gt=0)
    #: Test-only: webhook hosts (any port) allowed despite non-public addresses. Off by default.
    webhook_allow_hosts: CommaList = ()
    #: Seconds one delivery attempt may take (connect, send, answer).
    webhook_timeout: float = Field(default=10.0, gt=0)
    #: Attempts before a delivery is marked failed (the first try included).
    webhook_max_attempts: int = Field(default=15, ge=1)
    #: Delay before the first retry; each further retry waits twice as long, up to the cap.
    webhook_backoff_base: float = Field(default=5.0, gt=0)
    webhook_backoff_max: float = Field(default=3600.0, gt=0)
    #: How often the delivery loop looks for due deliveries.
    webhook_poll_seconds: float = Field(default=1.0, gt=0)
    #: Deliveries sent at once by one API process; 0 turns the delivery loop off there.
    webhook_concurrency: int = Field(default=8, ge=0)
    #: Of those, at most this many to one destination (``scheme://host:port``) and as many for
    #: one key, so a slow receiver never holds the senders other keys' events need.
    webhook_destination_concurrency: int = Field(default=2, ge=1)

    # --- scale-out (PostgreSQL + procrastinate, Redis, S3) ------------------------------
    #: ``auto``: procrastinate on PostgreSQL, the embedded task-table queue on SQLite.
    queue: Literal["auto", "local", "procrastinate"] = "auto"
    #: Redis for per-key rate limits shared by every API process (``redis://host:6379/0``).
    redis_url: str | None = None
    #: Prefix of every Redis key Reel writes.
    redis_prefix: str = "reel"
    #: Where videos, previews and input images live.
    storage: Literal["local", "s3"] = "local"
    s3_bucket: str | None = None
    #: Key prefix inside the bucket (e.g. ``reel/``).
    s3_prefix: str = ""
    #: S3-compatible endpoint (MinIO, R2, …); default: AWS.
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    #: Credentials; default: boto3's usual chain (environment, config files, instance role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"
    #: Queue priority per tier, ``tier=N`` comma-separated; higher runs first (default 0).
    tier_priorities: CommaList = ()
    #: When set, ``GET /metrics`` requires ``Authorization: Bearer <token>``.
    metrics_token: SecretStr | None = None

    @field_validator(
        "image_fetch_allow_hosts",
        "webhook_allow_hosts",
        "upstream_fetch_allow_hosts",
        "moderation_allow_hosts",
        mode="before",
    )
    @classmethod
    def _split_hosts(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(h.strip().lower() for h in value.split(",") if h.strip())
        if isinstance(value, tuple | list):
            for entry in value:
                if not _ALLOW_ENTRY.match(str(entry).strip()):
                    raise ValueError(
                        f"{entry!r} is not an exact host: give host names or IP addresses, "
                        "each optionally with :port (no wildcards, networks or URLs)"
                    )
        return value

    def for_process(self) -> dict[str, object]:
        """Every setting, secrets in clear, for another process (a worker) to rebuild these
        exact Settings with ``Settings.model_validate``; a JSON dump alone masks secrets."""
        data = self.model_dump(mode="json", exclude_none=True)
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                data[name] = value.get_secret_value()
        return data

    def upstream_secret(self, env_name: str) -> SecretStr | None:
        """The credential an upstream reads from the environment variable ``env_name``.

        The models file names the variable (``credentials_env``); the value never passes
        through the models file, logs or task rows. Reel's own ``REEL_*`` settings cannot be
        read this way, so a models file can never forward the signing key or database URL.
        """
        name = env_name.strip()
        if not name or name.upper().startswith(self.model_config.get("env_prefix", "REEL_")):
            raise ValueError(f"{env_name!r} cannot be used as an upstream credential variable")
        value = os.environ.get(name)
        return SecretStr(value) if value else None

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().strip()) < MIN_SECRET_LENGTH:
            raise ValueError(_WEAK_SECRET)
        return value

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, value: SecretStr | None) -> SecretStr | None:
        # A correct token always signs in, even from an address throttled for failures, so
        # its length, not the throttle, is what makes guessing hopeless.
        token = "" if value is None else value.get_secret_value()
        if token and len(token.strip()) < MIN_ADMIN_TOKEN_LENGTH:
            raise ValueError(
                f"REEL_ADMIN_TOKEN must be at least {MIN_ADMIN_TOKEN_LENGTH} random characters "
                "(for example `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
            )
        return value

    @field_validator("tier_priorities", mode="before")
    @classmethod
    def _split_priorities(cls, value: object) -> object:
        if isinstance(value, str):
            value = tuple(p.strip() for p in value.split(",") if p.strip())
        if isinstance(value, tuple | list):
            for item in value:
                tier, sep, number = str(item).partition("=")
                if not sep or not tier.strip() or not number.strip().lstrip("-").isdigit():
                    raise ValueError(f"tier_priorities: expected tier=N, got {item!r}")
        return value

    def priority_for(self, tier: str) -> int:
        for item in self.tier_priorities:
            name, _, number = item.partition("=")
            if name.strip() == tier:
                return int(number)
        return 0

    @property
    def resolved_queue(self) -> Literal["local", "procrastinate"]:
        if self.queue == "auto":
            return "local" if self.is_sqlite else "procrastinate"
        return self.queue

    @property
    def resolved_rate_limit_storage(self) -> str:
        """An explicit ``rate_limit_storage`` wins; else Redis when configured; else memory."""
        if self.rate_limit_storage != "memory://" or not self.redis_url:
            return self.rate_limit_storage
        return self.redis_url

    @property
    def scaled_out(self) -> bool:
        """State lives outside this machine: processes elsewhere must agree with this one."""
        return not self.is_sqlite

    def deployment_problems(self) -> list[str]:
        """Settings that would make processes on several machines disagree."""
        problems: list[str] = []
        if self.scaled_out:
            if self.secret_key is None:
                problems.append(
                    "REEL_SECRET_KEY must be set (the same value on every machine) "
                    "when REEL_DATABASE_URL is not SQLite"
                )
            if not self.public_url:
                problems.append(
                    "REEL_PUBLIC_URL must be set (the address clients reach the API at) "
                    "when REEL_DATABASE_URL is not SQLite"
                )
        if self.resolved_queue == "procrastinate" and self.is_sqlite:
            problems.append("REEL_QUEUE=procrastinate needs a PostgreSQL REEL_DATABASE_URL")
        if self.storage == "s3" and not self.s3_bucket:
            problems.append("REEL_STORAGE=s3 needs REEL_S3_BUCKET")
        return problems

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            for plain in ("postgres://", "postgresql://"):  # psycopg 3 is the driver we ship
                if url.startswith(plain):
                    return "postgresql+psycopg://" + url[len(plain) :]
            return url
        return f"sqlite:///{(self.data_dir / 'reel.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def media_dir(self) -> Path:
        return self.data_dir / "media"

    def prepare_data_dir(self) -> Path:
        """The data dir, created owner-only (0700) when it does not exist yet."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.data_dir

    @cached_property
    def signing_key(self) -> bytes:
        """The media-URL signing key: set, or generated once into the data dir (0600)."""
        if self.secret_key is not None:
            return self.secret_key.get_secret_value().encode()
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.prepare_data_dir()
            tmp = path.with_name(f".secret_key.{secrets.token_hex(8)}")
            # Created 0600 in one call: the key is never readable by others, not even briefly.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_urlsafe(48))
            try:
                path.hardlink_to(tmp)  # atomic: the first process to write wins
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        key = path.read_text().strip()
        if len(key) < MIN_SECRET_LENGTH:
            raise ValueError(f"{path} holds a key that is too short; {_WEAK_SECRET}")
        return key.encode()


@lru_cache
def get_settings() -> Settings:
    return Settings()
