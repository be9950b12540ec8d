"""Killed workers and restarted servers: every task ends completed once, or failed with exactly
one refund; attempts stay bounded; nothing is charged twice. Checked in the ledger."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import ReelServer

T2V = {"prompt": "chaos", "mode": "textToVideo"}
#: Kills per run; REEL_TEST_LONG=1 runs the long version locally.
LONG = bool(os.environ.get("REEL_TEST_LONG"))
KILLS = 40 if LONG else 8
#: Tasks in flight while workers are killed, and tasks queued across a restart.
IN_FLIGHT = 30 if LONG else 16
QUEUED = 100 if LONG else 40


def submit(srv: ReelServer, key: str, n: int) -> list[str]:
    with httpx.Client(timeout=30, headers={"Authorization": f"Bearer {key}"}) as c:
        return [
            c.post(f"{srv.url}/api/sora-2/generate", json={**T2V, "prompt": f"c{i}"}).json()[
                "taskId"
            ]
            for i in range(n)
        ]


def db(srv: ReelServer) -> sqlite3.Connection:
    return sqlite3.connect(srv.data_dir / "reel.db", timeout=30)


def wait_all_final(srv: ReelServer, timeout: float) -> dict[str, tuple[str, int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db(srv) as conn:
            rows = {
                r[0]: (r[1], r[2]) for r in conn.execute("SELECT id, status, attempts FROM tasks")
            }
        if all(status in ("completed", "failed", "canceled") for status, _ in rows.values()):
            return rows
        time.sleep(0.5)
    raise AssertionError(f"tasks still unfinished: {rows}")


def assert_ledger_consistent(
    srv: ReelServer, rows: dict[str, tuple[str, int]], max_attempts: int
) -> None:
    with db(srv) as conn:
        entries = conn.execute(
            "SELECT task_id, kind, amount FROM ledger_entries WHERE task_id IS NOT NULL"
        ).fetchall()
        (balance,) = conn.execute("SELECT balance FROM accounts").fetchone()
        (grants,) = conn.execute(
            "SELECT sum(amount) FROM ledger_entries WHERE kind = 'grant'"
        ).fetchone()
        videos = dict(conn.execute("SELECT id, video_key FROM tasks").fetchall())
    kinds: dict[str, list[str]] = {}
    for task_id, kind, _ in entries:
        kinds.setdefault(task_id, []).append(kind)
    for task_id, (status, attempts) in rows.items():
        assert 1 <= attempts <= max_attempts, (task_id, attempts)
        if status == "completed":
            assert kinds[task_id] == ["charge"], (task_id, kinds[task_id])
            assert (srv.data_dir / "media" / videos[task_id]).is_file()
        else:
            assert sorted(kinds[task_id]) == ["charge", "refund"], (task_id, kinds[task_id])
    assert balance == grants + sum(amount for _, _, amount in entries)


@pytest.mark.slow
def test_workers_killed_at_random_points(tmp_path: Path) -> None:
    env = {
        "REEL_SANDBOX_DELAY": "0.8",
        "REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000",
        "REEL_LEASE_SECONDS": "2",
        "REEL_MAX_ATTEMPTS": "3",
    }
    rng = random.Random(1234)
    with ReelServer(tmp_path / "data", workers=2, **env) as srv:
        key = str(srv.create_key(credits=400)["key"])
        submit(srv, key, IN_FLIGHT)
        killed = 0
        deadline = time.monotonic() + 120
        while killed < KILLS and time.monotonic() < deadline:
            time.sleep(rng.uniform(0.1, 1.2))
            with db(srv) as conn:
                pids = [p for (p,) in conn.execute("SELECT pid FROM workers")]
            if pids:
                try:
                    os.kill(rng.choice(pids), signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
        assert killed >= min(KILLS, 4)
        rows = wait_all_final(srv, timeout=180)
        assert_ledger_consistent(srv, rows, max_attempts=3)
        assert any(status == "completed" for status, _ in rows.values())
        assert any(attempts > 1 for _, attempts in rows.values())  # the kills did land
        assert "respawning" in srv.log()


@pytest.mark.slow
def test_restart_with_queued_tasks_completes_all_once(tmp_path: Path) -> None:
    env = {
        "REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000",
        "REEL_RATE_LIMIT_CREATE": "1000/hour",
        "REEL_SANDBOX_DELAY": "0",
    }
    with ReelServer(tmp_path / "data", workers=0, **env) as srv:
        key = str(srv.create_key(credits=400)["key"])
        ids = submit(srv, key, QUEUED)
    assert len(set(ids)) == QUEUED
    with ReelServer(tmp_path / "data", workers=2, **env) as srv:
        rows = wait_all_final(srv, timeout=300)
    assert set(rows) == set(ids)
    assert all(status == "completed" and attempts == 1 for status, attempts in rows.values())
    assert_ledger_consistent(srv, rows, max_attempts=1)
