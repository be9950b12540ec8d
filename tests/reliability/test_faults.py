"""Faults: a locked database, a failing disk, a race for the last credits."""

from __future__ import annotations

import errno
import json
import multiprocessing as mp
import sqlite3
import time
from collections.abc import Callable
from multiprocessing.pool import ThreadPool
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest
from sqlalchemy import select

from reel.db.models import LedgerEntry, Task
from reel.service.context import Services
from reel.storage.local import LocalStorage
from reel.types import TaskStatus
from reel.worker.process import run_once
from reel.worker.runner import Runner
from tests.conftest import auth
from tests.e2e.server import ReelServer
from tests.factories import make_key

T2V = {"prompt": "fault", "mode": "textToVideo"}


def _hold_write_lock(db_path: str, seconds: float, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("UPDATE api_keys SET name = name")
    ready.set()
    time.sleep(seconds)
    conn.execute("ROLLBACK")
    conn.close()


def test_locked_database_answers_503_then_recovers(tmp_path: Path) -> None:
    with ReelServer(tmp_path / "data", workers=0, REEL_DB_BUSY_TIMEOUT="1") as srv:
        key = str(srv.create_key(credits=8)["key"])
        headers = {"Authorization": f"Bearer {key}"}
        ctx = mp.get_context("spawn")
        ready = ctx.Event()
        holder = ctx.Process(
            target=_hold_write_lock, args=(str(srv.data_dir / "reel.db"), 4.0, ready)
        )
        holder.start()
        assert ready.wait(10)
        started = time.monotonic()
        r = httpx.post(f"{srv.url}/api/sora-2/generate", json=T2V, headers=headers, timeout=30)
        waited = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert r.json()["errorCode"] == "SERVICE_BUSY" and r.headers["Retry-After"]
        assert 0.9 <= waited < 3.5  # waited for the lock, up to the bound
        # reads are not blocked by a writer in WAL mode
        acct = httpx.get(f"{srv.url}/api/sora-2/account", headers=headers, timeout=10)
        assert acct.status_code == 200 and acct.json()["credits"] == 8
        holder.join(10)
        ok = httpx.post(f"{srv.url}/api/sora-2/generate", json=T2V, headers=headers, timeout=30)
        assert ok.status_code == 200
    with sqlite3.connect(srv.data_dir / "reel.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert db.execute("SELECT count(*) FROM tasks").fetchone() == (1,)
        assert db.execute("SELECT balance FROM accounts").fetchone() == (4,)


class DiskFullStorage(LocalStorage):
    """Local storage whose disk fills up halfway through writing a video."""

    def _atomic_write(self, key: str, write: Callable[[BinaryIO], object]) -> None:
        if not key.endswith(".mp4"):
            return super()._atomic_write(key, write)

        def half_then_full(out: BinaryIO) -> None:
            out.write(b"\0" * 1024)
            raise OSError(errno.ENOSPC, "No space left on device")

        return super()._atomic_write(key, half_then_full)


def test_disk_full_while_storing_fails_task_with_refund(services: Services, client) -> None:  # type: ignore[no-untyped-def]
    issued = make_key(services, credits=4)
    tid = client.post("/api/sora-2/generate", json=T2V, headers=auth(issued.key)).json()["taskId"]
    assert isinstance(services.storage, LocalStorage)
    broken = DiskFullStorage(services.storage.root, secret=services.settings.signing_key)
    run_once(Runner(type(services)(**{**services.__dict__, "storage": broken})))
    with services.db.read() as s:
        task = s.get(Task, tid)
        assert task is not None and task.status == TaskStatus.FAILED
        assert task.video_key is None
        kinds = sorted(s.scalars(select(LedgerEntry.kind).where(LedgerEntry.task_id == tid)))
    assert kinds == ["charge", "refund"]
    videos = (
        list((services.storage.root / "videos").glob("*"))
        if (services.storage.root / "videos").exists()
        else []
    )
    assert not [p for p in videos if p.suffix == ".mp4" or p.name.startswith(".incoming")]
    status = client.post(
        "/api/sora-2/check-status", json={"taskId": tid}, headers=auth(issued.key)
    ).json()
    assert status["status"] == "failed" and "videoUrl" not in status


def _create_many(args: tuple[str, str, int]) -> list[int]:
    url, key, n = args
    with httpx.Client(timeout=60) as c:
        return [
            c.post(
                f"{url}/api/sora-2/generate",
                json={**T2V, "prompt": f"r{i}"},
                headers={"Authorization": f"Bearer {key}"},
            ).status_code
            for i in range(n)
        ]


@pytest.mark.slow
def test_eight_clients_race_for_100_credits(tmp_path: Path) -> None:
    env = {"REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000", "REEL_RATE_LIMIT_CREATE": "1000/hour"}
    with ReelServer(tmp_path / "data", workers=0, **env) as srv:
        key = str(srv.create_key(credits=100)["key"])
        with ThreadPool(8) as pool:  # concurrent requests: the race is in the server
            batches = pool.map(_create_many, [(srv.url, key, 25)] * 8)
    codes = [c for batch in batches for c in batch]
    assert len(codes) == 200
    assert codes.count(200) == 25 and codes.count(402) == 175, sorted(set(codes))
    with sqlite3.connect(srv.data_dir / "reel.db") as db:
        (balance,) = db.execute("SELECT balance FROM accounts").fetchone()
        (total,) = db.execute("SELECT sum(amount) FROM ledger_entries").fetchone()
        (charges,) = db.execute(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'charge'"
        ).fetchone()
        (tasks,) = db.execute("SELECT count(*) FROM tasks").fetchone()
    assert balance == 0 and total == 0 and charges == 25 and tasks == 25


@pytest.mark.slow
@pytest.mark.parametrize(
    "database", ["sqlite", pytest.param("postgresql", marks=pytest.mark.services)]
)
def test_clients_race_for_a_daily_cap(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    """Six clients create at once through two keys of one account with plenty of credits and
    a daily cap of 5 videos' credits: exactly 5 pass, every other create is QUOTA_EXCEEDED and
    charged nothing (the check runs after the charge has locked the account's row)."""
    env = {"REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000", "REEL_RATE_LIMIT_CREATE": "1000/hour"}
    if database == "postgresql":
        env["REEL_DATABASE_URL"] = request.getfixturevalue("postgres").new_database()
        env.update(REEL_SECRET_KEY="race-" + "x" * 32, REEL_PUBLIC_URL="auto")
    with ReelServer(tmp_path / "data", workers=0, **env) as srv:
        first = srv.create_key(credits=1000)
        account = str(first["account"])
        out = srv.cli("keys", "create", "--name", "second", "--account", account, "--json")
        second = json.loads(out.stdout.strip().splitlines()[-1])
        assert second["account"] == account
        probe = httpx.post(
            f"{srv.url}/api/sora-2/generate",
            json={**T2V, "prompt": "probe"},
            headers={"Authorization": f"Bearer {first['key']}"},
            timeout=30,
        )
        assert probe.status_code == 200
        price = 1000 - int(srv.query("SELECT balance FROM accounts")[0][0])
        srv.cli("accounts", "limits", account, "--daily-credits", str(5 * price))
        keys = [str(first["key"]), str(second["key"])] * 3
        with ThreadPool(6) as pool:
            batches = pool.map(_create_many, [(srv.url, k, 6) for k in keys])
        (balance,) = srv.query("SELECT balance FROM accounts")[0]
        (charges,) = srv.query("SELECT count(*) FROM ledger_entries WHERE kind = 'charge'")[0]
        (tasks,) = srv.query("SELECT count(*) FROM tasks")[0]
    codes = [c for batch in batches for c in batch]
    assert codes.count(200) == 4 and codes.count(429) == 32, sorted(set(codes))
    assert balance == 1000 - 5 * price and charges == 5 and tasks == 5
