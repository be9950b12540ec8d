"""The real services tests use: PostgreSQL, Redis and an S3 server (moto) on loopback.

A missing service skips its tests with the reason, except under ``REEL_TEST_REQUIRE_SERVICES=1``
(CI), where it fails them. Each test gets its own database (copied from one migrated
template), its own Redis key prefix and its own bucket, so tests never see each other's state.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, NoReturn

import pytest

PG_ADMIN_URL = os.environ.get("REEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def required() -> bool:
    return os.environ.get("REEL_TEST_REQUIRE_SERVICES") == "1"


def unavailable(service: str, reason: str) -> NoReturn:
    message = f"{service} is not available ({reason})"
    if required():
        pytest.fail(f"{message}; REEL_TEST_REQUIRE_SERVICES=1 makes this an error")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Postgres:
    """Per-test databases copied from one template migrated once (both queue schemas).

    Dropping a database costs a checkpoint (about a second), so a finished test's database is
    emptied (TRUNCATE) and handed to the next test instead; all are dropped at the end.
    """

    admin_url: str
    template: str = ""
    created: list[str] = field(default_factory=list)
    free: list[str] = field(default_factory=list)

    def url(self, name: str) -> str:
        base = self.admin_url.rsplit("/", 1)[0]
        return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def start(self) -> Postgres:
        from sqlalchemy import create_engine

        from reel.db.migrate import upgrade

        self.template = f"reel_tpl_{secrets.token_hex(4)}"
        self._admin(f"CREATE DATABASE {self.template}")
        engine = create_engine(self.url(self.template))
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return self

    def new_database(self, *, migrated: bool = True) -> str:
        while migrated and self.free:
            name = self.free.pop()
            if self._emptied(name):
                return self.url(name)
        name = f"reel_test_{secrets.token_hex(5)}"
        self._admin(f"CREATE DATABASE {name}" + (f" TEMPLATE {self.template}" if migrated else ""))
        self.created.append(name)
        return self.url(name)

    def release(self, url: str) -> None:
        """The test using ``url`` is over: its database may serve the next one."""
        self.free.append(url.rsplit("/", 1)[1])

    def _emptied(self, name: str) -> bool:
        import psycopg

        self._admin(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
        url = self.admin_url.rsplit("/", 1)[0] + f"/{name}"
        try:
            with psycopg.connect(url, autocommit=True, connect_timeout=3) as conn:
                conn.execute("SET lock_timeout = '3s'")
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                        " AND tablename <> 'alembic_version'"
                    )
                ]
                conn.execute(
                    f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"  # type: ignore[arg-type]
                )
                version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        except psycopg.Error:
            return False
        return len(version) == 1

    def close(self) -> None:
        for name in [*self.created, self.template]:
            if name:
                with suppress(Exception):
                    self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def start_postgres() -> Postgres:
    try:
        import psycopg
    except ImportError:
        unavailable("PostgreSQL", "psycopg is not installed: pip install -e '.[test]'")
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        unavailable("PostgreSQL", f"{PG_ADMIN_URL}: {exc}".strip())
    return Postgres(PG_ADMIN_URL).start()


def check_redis() -> str:
    try:
        import redis
    except ImportError:
        unavailable("Redis", "redis is not installed: pip install -e '.[test]'")
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        unavailable("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


def delete_redis_prefix(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)


@dataclass
class S3Server:
    """moto's S3-compatible server on a loopback port, in this process."""

    endpoint: str
    server: Any

    client: Any = None

    def new_bucket(self) -> str:
        import boto3

        if self.client is None:
            self.client = boto3.client("s3", region_name="us-east-1", **self.credentials())
        name = f"reel-test-{secrets.token_hex(5)}"
        self.client.create_bucket(Bucket=name)
        return name

    def credentials(self) -> dict[str, str]:
        return {
            "endpoint_url": self.endpoint,
            "aws_access_key_id": "reel-test",
            "aws_secret_access_key": "reel-test-secret",
        }


def start_s3() -> Iterator[S3Server]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        unavailable("S3 test server", "moto[server] is not installed: pip install -e '.[test]'")
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}", server)
    finally:
        server.stop()


@dataclass(frozen=True)
class Scaled:
    """Settings (as ``REEL_*`` variables) for one scaled-out test: its own database, Redis
    prefix and bucket."""

    env: dict[str, str]

    @property
    def database_url(self) -> str:
        return self.env["REEL_DATABASE_URL"]

    def settings_fields(self) -> dict[str, str]:
        return {k.removeprefix("REEL_").lower(): v for k, v in self.env.items()}


def scaled_env(
    postgres: Postgres, s3: S3Server, *, public_url: str, migrated: bool = True
) -> Scaled:
    creds = s3.credentials()
    return Scaled(
        {
            "REEL_DATABASE_URL": postgres.new_database(migrated=migrated),
            "REEL_QUEUE": "procrastinate",
            "REEL_REDIS_URL": REDIS_URL,
            "REEL_REDIS_PREFIX": f"reeltest{secrets.token_hex(4)}",
            "REEL_STORAGE": "s3",
            "REEL_S3_BUCKET": s3.new_bucket(),
            "REEL_S3_PREFIX": "media/",
            "REEL_S3_ENDPOINT_URL": creds["endpoint_url"],
            "REEL_S3_REGION": "us-east-1",
            "REEL_S3_ACCESS_KEY_ID": creds["aws_access_key_id"],
            "REEL_S3_SECRET_ACCESS_KEY": creds["aws_secret_access_key"],
            "REEL_S3_ADDRESSING_STYLE": "path",
            "REEL_SECRET_KEY": secrets.token_urlsafe(32),
            "REEL_PUBLIC_URL": public_url,
        }
    )
