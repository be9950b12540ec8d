"""Per-key limits in Redis: one window shared by every API process, checked and counted in one
script call (key and account together), atomic under concurrency; an outage answers 503."""

from __future__ import annotations

import multiprocessing as mp
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from limits import parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from reel.service.errors import RateLimited, ServiceBusy
from reel.service.ratelimit import Bucket, RateLimiter
from tests import services as real


@pytest.fixture
def prefix() -> Iterator[str]:
    real.check_redis()
    name = f"reeltest{secrets.token_hex(4)}"
    yield name
    real.delete_redis_prefix(name)


def _limiter(prefix: str, create: str = "5/hour") -> RateLimiter:
    return RateLimiter(
        create=create, status="9/minute", storage_uri=real.REDIS_URL, key_prefix=prefix
    )


def _allowed(limiter: RateLimiter, key_id: str, account: tuple[str, int] | None = None) -> bool:
    try:
        limiter.hit(Bucket.CREATE, key_id, account=account)
    except RateLimited:
        return False
    return True


@pytest.mark.services
def test_two_limiters_share_one_window(prefix: str) -> None:
    a, b = _limiter(prefix), _limiter(prefix)
    outcomes = [_allowed(a if i % 2 else b, "key_1") for i in range(8)]
    assert outcomes == [True] * 5 + [False] * 3
    assert a.peek(Bucket.CREATE, "key_2").remaining == 5  # other keys are untouched


@pytest.mark.services
def test_key_and_account_cost_one_round_trip_per_request(prefix: str) -> None:
    limiter = _limiter(prefix, create="50/hour")
    limiter.hit(Bucket.CREATE, "key_1", account=("acct_1", 40))  # the script is loaded
    commands = _commands_of_limiter(prefix, lambda: _hit_times(limiter, 6))
    assert commands == ["EVALSHA"] * 6
    commands = _commands_of_limiter(prefix, lambda: limiter.peek(Bucket.CREATE, "key_1"))
    assert commands == ["EVALSHA"]


@pytest.mark.services
def test_a_flushed_script_cache_is_reloaded(prefix: str) -> None:
    limiter = _limiter(prefix, create="3/hour")
    assert _allowed(limiter, "key_1")
    redis.Redis.from_url(real.REDIS_URL).script_flush()
    commands = _commands_of_limiter(prefix, lambda: _hit_times(limiter, 1))
    assert commands == ["EVALSHA", "SCRIPT", "EVALSHA"]  # NOSCRIPT, load, run again
    assert [_allowed(limiter, "key_1") for _ in range(2)] == [True, False]  # still one window


@pytest.mark.services
def test_concurrent_processes_and_threads_never_exceed_a_limit(prefix: str) -> None:
    """Three processes of eight threads each race for one key's 25 and one account's 20."""
    ctx = mp.get_context("spawn")
    with ctx.Pool(3) as pool:
        results = pool.starmap(_race, [(prefix, "key_1", 25, None)] * 3)
        assert sum(results) == 25
        accounts = pool.starmap(_race, [(prefix, f"key_{i}", 25, 20) for i in range(2, 5)])
        assert sum(accounts) == 20
    client = redis.Redis.from_url(real.REDIS_URL)
    assert client.llen(f"{prefix}:ratelimit:LIMITER/create/key_1/25/1/hour") == 25
    assert _limiter(prefix, "25/hour").peek(Bucket.CREATE, "key_1").remaining == 0


@pytest.mark.services
def test_windows_written_by_the_limits_library_are_the_same_windows(prefix: str) -> None:
    """Processes of an older release (`limits`' own scripts) count in the same lists."""
    storage = RedisStorage(real.REDIS_URL, key_prefix=f"{prefix}:ratelimit")
    older = MovingWindowRateLimiter(storage)
    for _ in range(3):
        assert older.hit(parse("5/hour"), "create", "key_1")
    limiter = _limiter(prefix)
    assert limiter.peek(Bucket.CREATE, "key_1").remaining == 2
    assert [_allowed(limiter, "key_1") for _ in range(3)] == [True, True, False]
    assert not older.hit(parse("5/hour"), "create", "key_1")


def test_unreachable_redis_is_service_busy() -> None:
    limiter = RateLimiter(
        create="5/hour", status="9/minute", storage_uri=f"redis://127.0.0.1:{real.free_port()}/0"
    )
    with pytest.raises(ServiceBusy):
        limiter.hit(Bucket.CREATE, "key_1")
    with pytest.raises(ServiceBusy):
        limiter.peek(Bucket.STATUS, "key_1")


def _hit_times(limiter: RateLimiter, n: int) -> None:
    for _ in range(n):
        limiter.hit(Bucket.CREATE, "key_1", account=("acct_1", 40))


def _commands_of_limiter(prefix: str, run: object) -> list[str]:
    """The commands the limiter's connection sent while ``run`` ran, read with MONITOR (exact
    while other clients use the same server, unlike its command statistics)."""
    assert callable(run)
    watcher = redis.Redis.from_url(real.REDIS_URL)
    marker = f"{prefix}-done"
    with watcher.monitor() as monitor:
        run()
        watcher.echo(marker)
        seen: list[dict[str, str]] = []
        while True:
            command = monitor.next_command()
            if command["command"] == f"ECHO {marker}":
                break
            seen.append(command)
    ours = {
        (c["client_address"], c["client_port"])
        for c in seen
        if c["client_type"] != "lua" and prefix in c["command"]
    }
    assert len(ours) == 1, seen  # one connection carried the limiter's commands
    return [
        c["command"].split()[0].upper()
        for c in seen
        if (c["client_address"], c["client_port"]) in ours and c["client_type"] != "lua"
    ]


def _race(prefix: str, key_id: str, per_key: int, per_account: int | None) -> int:
    limiter = _limiter(prefix, create=f"{per_key}/hour")
    account = None if per_account is None else ("acct_race", per_account)
    with ThreadPoolExecutor(8) as pool:
        return sum(pool.map(lambda _: _allowed(limiter, key_id, account), range(40)))
