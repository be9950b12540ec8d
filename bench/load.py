"""Sustained check-status polling by many clients while tasks are created and completed.

Loopback only, bounded in time. Two phases against one `reel serve` (SQLite, sandbox engine):
  1. baseline: pollers only, nothing being written;
  2. load: the same pollers while a creator submits tasks that the workers complete.
Prints throughput, p50/p99 and errors of each phase and the ratio load / baseline.

    python bench/load.py [--seconds 15] [--pollers 32] [--create-rate 5] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

# The repository root replaces this folder on sys.path (bench/queue.py would hide the stdlib).
sys.path[0] = str(Path(__file__).resolve().parents[1])
from tests.e2e.server import ReelServer


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    def add(self, status: int, seconds: float) -> None:
        self.latencies.append(seconds)
        if status != 200:
            self.errors[status] = self.errors.get(status, 0) + 1

    def row(self, name: str) -> str:
        q = statistics.quantiles(self.latencies, n=100) if len(self.latencies) > 1 else [0] * 99
        rps = len(self.latencies) / self.elapsed if self.elapsed else 0
        return (
            f"{name:<24} {len(self.latencies):>7} {rps:>8.0f} {q[49] * 1000:>8.1f} "
            f"{q[98] * 1000:>8.1f}  {self.errors or '-'}"
        )


async def poll(
    client: httpx.AsyncClient, url: str, ids: list[str], stop: float, stats: Stats
) -> None:
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        r = await client.post(url, json={"taskId": random.choice(ids)})
        stats.add(r.status_code, time.perf_counter() - t0)


async def create(
    client: httpx.AsyncClient, url: str, rate: float, stop: float, ids: list[str], stats: Stats
) -> None:
    n = 0
    while time.perf_counter() < stop:
        t0 = time.perf_counter()
        r = await client.post(url, json={"prompt": f"load {n}", "mode": "textToVideo"})
        stats.add(r.status_code, time.perf_counter() - t0)
        if r.status_code == 200:
            ids.append(r.json()["taskId"])
        n += 1
        await asyncio.sleep(max(0.0, 1 / rate - (time.perf_counter() - t0)))


async def phase(
    base: str, key: str, ids: list[str], seconds: float, pollers: int, create_rate: float
) -> tuple[Stats, Stats]:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=pollers + 2)
    status_stats, create_stats = Stats(), Stats()
    async with httpx.AsyncClient(
        base_url=base, headers=headers, limits=limits, timeout=30
    ) as client:
        start = time.perf_counter()
        stop = start + seconds
        jobs = [
            poll(client, "/api/sora-2/check-status", ids, stop, status_stats)
            for _ in range(pollers)
        ]
        if create_rate > 0:
            jobs.append(
                create(client, "/api/sora-2/generate", create_rate, stop, ids, create_stats)
            )
        await asyncio.gather(*jobs)
        status_stats.elapsed = create_stats.elapsed = time.perf_counter() - start
    return status_stats, create_stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--pollers", type=int, default=32)
    ap.add_argument("--create-rate", type=float, default=5.0, help="task creations per second")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    data = Path(tempfile.mkdtemp(prefix="reel-load-")) / "data"
    env = {
        "REEL_RATE_LIMIT_STATUS": "10000000/minute",
        "REEL_RATE_LIMIT_CREATE": "1000000/hour",
        "REEL_MAX_ACTIVE_TASKS_PER_KEY": "100000",
        "REEL_SANDBOX_DELAY": "0.2",
        "REEL_LOG_LEVEL": "warning",
    }
    with ReelServer(data, workers=args.workers, **env) as server:
        key = str(server.create_key(credits=10**8)["key"])
        seed_ids: list[str] = []
        for i in range(20):
            r = httpx.post(
                f"{server.url}/api/sora-2/generate",
                json={"prompt": f"seed {i}", "mode": "textToVideo"},
                headers={"Authorization": f"Bearer {key}"},
            )
            seed_ids.append(r.json()["taskId"])
        time.sleep(3)  # let the seed tasks complete so both phases poll finished tasks too
        base_status, _ = asyncio.run(
            phase(server.url, key, list(seed_ids), args.seconds, args.pollers, 0)
        )
        ids = list(seed_ids)
        load_status, load_create = asyncio.run(
            phase(server.url, key, ids, args.seconds, args.pollers, args.create_rate)
        )
        completed = sum(
            1
            for tid in ids[20:]
            if httpx.post(
                f"{server.url}/api/sora-2/check-status",
                json={"taskId": tid},
                headers={"Authorization": f"Bearer {key}"},
            ).json()["status"]
            == "completed"
        )
    print(f"{'phase':<24} {'requests':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}  errors")
    print(base_status.row("status, idle"))
    print(load_status.row("status, under load"))
    print(load_create.row("generate, under load"))
    print(f"\ntasks created under load: {len(ids) - 20}, completed by the end: {completed}")
    ratio = (len(load_status.latencies) / load_status.elapsed) / (
        len(base_status.latencies) / base_status.elapsed
    )
    print(f"status throughput ratio (load / idle): {ratio:.2f}")
    print(
        f"{args.pollers} pollers, {args.create_rate}/s creations, {args.workers} workers, "
        f"{args.seconds:.0f} s per phase, {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
