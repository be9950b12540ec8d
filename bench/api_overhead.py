"""check-status against a bare FastAPI endpoint, at a fixed rate, and as the task table grows.

Three modes, each against ``reel serve --no-workers`` on loopback, driven by an async load
generator in this process:

- default: throughput and latency of check-status vs a bare FastAPI JSON endpoint served the
  same way, for the same time at the same concurrency, in one run (``throughput ratio``);
- ``--rate 200``: open loop at a fixed request rate; latency counts from each request's
  scheduled send time, so a slow server cannot hide its queueing (``p99 at 200 req/s``);
- ``--rows 1000,1000000``: fills the task table (bulk insert, other keys' and the polling key's
  finished tasks) to each size in turn, on SQLite and on PostgreSQL, and prints the p50 of
  check-status, ``GET /api/sora-2/tasks`` (first page) and ``/metrics`` at each size, with the
  ratio largest/smallest (``1M/1k p50 ratio``).

    python bench/api_overhead.py [--seconds 10] [--concurrency 16]
    python bench/api_overhead.py --rate 200 --seconds 10
    python bench/api_overhead.py --rows 1000,1000000 --backends sqlite,postgres --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# The repository root replaces this folder on sys.path (bench/queue.py would hide the stdlib).
sys.path[0] = str(Path(__file__).resolve().parents[1])
from tests.e2e.server import ReelServer, free_port

BARE_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.post("/api/sora-2/check-status")
async def check_status(body: dict) -> dict:
    return {"success": True, "status": "processing", "progress": "queued",
            "message": "Video generation queued", "taskId": body.get("taskId")}
"""
PG_ADMIN_URL = os.environ.get("REEL_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class Target:
    """One request to repeat: method, URL, JSON body."""

    def __init__(self, url: str, body: dict[str, str] | None = None) -> None:
        self.url, self.body = url, body

    async def send(self, client: httpx.AsyncClient) -> int:
        if self.body is None:
            return (await client.get(self.url)).status_code
        return (await client.post(self.url, json=self.body)).status_code


async def closed_loop(
    target: Target, headers: dict[str, str], seconds: float, concurrency: int
) -> tuple[float, list[float], int]:
    """(requests per second, latencies, errors) with ``concurrency`` requests always in flight."""
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def one() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                status = await target.send(client)
                latencies.append(time.perf_counter() - t0)
                errors += status != 200

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, errors


async def fixed_rate(
    target: Target, headers: dict[str, str], seconds: float, rate: float
) -> tuple[list[float], int]:
    """(latencies from each scheduled send time, errors) for ``rate`` requests per second."""
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def one(due: float) -> None:
            nonlocal errors
            status = await target.send(client)
            latencies.append(time.perf_counter() - due)
            errors += status != 200

        start = time.perf_counter() + 0.05
        pending = []
        for i in range(int(seconds * rate)):
            due = start + i / rate
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            pending.append(asyncio.create_task(one(due)))
        await asyncio.gather(*pending)
    return latencies, errors


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


@contextmanager
def bare_server() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="reel-bench-bare-"))
    (folder / "bare_app.py").write_text(BARE_APP)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "bare_app:app", "--port", str(port)]
    proc = subprocess.Popen(
        [*argv, "--log-level", "warning"],
        cwd=folder,
        env={**os.environ, "PYTHONPATH": str(folder)},
    )
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/api/sora-2/check-status"
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def reel_server(backend: str) -> Iterator[ReelServer]:
    """``reel serve --no-workers`` on a fresh SQLite file or a fresh PostgreSQL database."""
    env = {"REEL_RATE_LIMIT_STATUS": "1000000/minute", "REEL_LOG_LEVEL": "warning"}
    database = None
    if backend == "postgres":
        import psycopg
        from sqlalchemy import create_engine

        from reel.db.migrate import upgrade

        database = f"reel_bench_{secrets.token_hex(4)}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {database}")  # type: ignore[arg-type]
        url = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        env["REEL_DATABASE_URL"] = f"{url}/{database}"
        env["REEL_SECRET_KEY"] = secrets.token_hex(16)
        env["REEL_PUBLIC_URL"] = "auto"
        engine = create_engine(env["REEL_DATABASE_URL"])
        upgrade(engine)
        engine.dispose()
    server = ReelServer(Path(tempfile.mkdtemp(prefix="reel-bench-")) / "data", workers=0, **env)
    try:
        yield server.start()
    finally:
        server.stop()
        if database is not None:
            import psycopg

            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")  # type: ignore[arg-type]


def fill(server: ReelServer, key_ids: list[str], count: int) -> None:
    """Add ``count`` finished tasks, spread over ``key_ids`` and the last 30 days."""
    from sqlalchemy import create_engine, insert, text

    from reel.db.models import Task

    engine = create_engine(server.database_url)
    now = time.time()
    rng = random.Random(count)
    table = Task.__table__
    with engine.begin() as conn:
        for start in range(0, count, 10_000):
            rows = []
            for i in range(start, min(count, start + 10_000)):
                created = now - rng.uniform(60, 30 * 86400)
                status = "completed" if i % 20 else rng.choice(["failed", "canceled"])
                done = status == "completed"
                rows.append(
                    {
                        "id": f"task_{secrets.token_hex(12)}",
                        "key_id": key_ids[i % len(key_ids)],
                        "status": status,
                        "mode": "textToVideo",
                        "tier": "sora-2",
                        "model": "sandbox",
                        "aspect": "landscape",
                        "duration_s": 10,
                        "width": 1280,
                        "height": 720,
                        "prompt": "a bench task",
                        "credits": 10,
                        "extra": {},
                        "stage": "done" if done else "failed",
                        "percent": 100.0 if done else 0.0,
                        "engine": "sandbox",
                        "video_key": f"videos/{i}.mp4" if done else None,
                        "created_at": created,
                        "started_at": created + 1,
                        "finished_at": created + 30,
                        "generation_seconds": rng.uniform(5, 120) if done else None,
                    }
                )
            conn.execute(insert(table), rows)
        conn.execute(text("ANALYZE"))
    engine.dispose()


def table_sizes(args: argparse.Namespace, sizes: list[int]) -> None:
    concurrency = min(args.concurrency, 8)
    for backend in args.backends.split(","):
        with reel_server(backend) as server:
            key = str(server.create_key(credits=10)["key"])
            others = [str(server.create_key(credits=0, name=f"o{i}")["id"]) for i in range(3)]
            headers = {"Authorization": f"Bearer {key}"}
            task = httpx.post(
                f"{server.url}/api/sora-2/generate",
                headers=headers,
                json={"prompt": "bench", "mode": "textToVideo"},
            ).json()["taskId"]
            key_id = str(server.query("SELECT key_id FROM tasks WHERE id = :t", t=task)[0][0])
            targets = {
                "check-status": Target(f"{server.url}/api/sora-2/check-status", {"taskId": task}),
                "GET /tasks": Target(f"{server.url}/api/sora-2/tasks?limit=20"),
                "/metrics": Target(f"{server.url}/metrics"),
            }
            p50s: dict[str, list[float]] = {name: [] for name in targets}
            filled = 0
            print(f"\n{backend}: p50 ms at each task-table size (concurrency {concurrency})")
            print(f"{'rows':>10} " + " ".join(f"{name:>14}" for name in targets) + "   fill s")
            for size in sizes:
                t0 = time.perf_counter()
                fill(server, [key_id, *others], size - filled)
                filled = size
                fill_s = time.perf_counter() - t0
                cells = []
                for name, target in targets.items():
                    asyncio.run(closed_loop(target, headers, 1.0, concurrency))  # warm-up
                    _, lat, errors = asyncio.run(
                        closed_loop(target, headers, args.seconds, concurrency)
                    )
                    p50s[name].append(pct(lat, 50))
                    cells.append(f"{pct(lat, 50):>11.1f}{'!' if errors else ' ':>3}")
                print(f"{size:>10} " + " ".join(cells) + f"   {fill_s:6.1f}")
            label = f"{_short(sizes[-1])}/{_short(sizes[0])}"
            for name, values in p50s.items():
                print(f"{backend} {name}: {label} p50 ratio: {values[-1] / values[0]:.2f}")


def _short(n: int) -> str:
    for unit, size in (("M", 1_000_000), ("k", 1_000)):
        if n >= size and n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--rate", type=float, help="fixed request rate (open loop), e.g. 200")
    ap.add_argument("--rows", help="task-table sizes, e.g. 1000,1000000")
    ap.add_argument("--backends", default="sqlite,postgres", help="for --rows")
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs")
    if args.rows:
        sizes = sorted(int(n) for n in args.rows.split(","))
        table_sizes(args, sizes)
        return

    with reel_server("sqlite") as reel, bare_server() as bare_url:
        key = str(reel.create_key(credits=10)["key"])
        headers = {"Authorization": f"Bearer {key}"}
        task = httpx.post(
            f"{reel.url}/api/sora-2/generate",
            headers=headers,
            json={"prompt": "bench", "mode": "textToVideo"},
        ).json()["taskId"]
        targets = {
            "bare FastAPI": Target(bare_url, {"taskId": task}),
            "Reel check-status": Target(f"{reel.url}/api/sora-2/check-status", {"taskId": task}),
        }
        if args.rate:
            print(
                f"{'target':<20} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}  at {args.rate:g} req/s"
            )
            for name, target in targets.items():
                asyncio.run(fixed_rate(target, headers, 1.0, args.rate))  # warm-up
                lat, errors = asyncio.run(fixed_rate(target, headers, args.seconds, args.rate))
                print(f"{name:<20} {pct(lat, 50):>8.1f} {pct(lat, 99):>8.1f} {errors:>7}")
            print(f"Reel check-status p99 at {args.rate:g} req/s: {pct(lat, 99):.1f} ms")
            return
        results = {}
        for name, target in targets.items():
            asyncio.run(closed_loop(target, headers, 1.0, args.concurrency))  # warm-up
            rps, lat, errors = asyncio.run(
                closed_loop(target, headers, args.seconds, args.concurrency)
            )
            results[name] = (rps, pct(lat, 50), pct(lat, 99), errors)
        print(f"{'target':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, (rps, p50, p99, errors) in results.items():
            print(f"{name:<20} {rps:>9.0f} {p50:>8.1f} {p99:>8.1f} {errors:>7}")
        base, ours = results["bare FastAPI"], results["Reel check-status"]
        print(f"\nthroughput ratio (Reel / bare): {ours[0] / base[0]:.2f}")
        print(f"p50 ratio: {ours[1] / base[1]:.2f}   p99 ratio: {ours[2] / base[2]:.2f}")
        print(f"concurrency {args.concurrency}, {args.seconds:.0f} s per target")


if __name__ == "__main__":
    main()
