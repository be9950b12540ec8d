"""check-status throughput and latency against a bare FastAPI JSON endpoint, served the same way.

Both run as one uvicorn process on loopback; the same async load generator drives each for the
same time with the same concurrency, in one run. Prints a table and the ratios.

    python bench/api_overhead.py [--seconds 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
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


async def drive(
    url: str, headers: dict[str, str], body: dict[str, str], seconds: float, concurrency: int
) -> tuple[int, int, list[float], float]:
    latencies: list[float] = []
    errors = 0
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(headers=headers, limits=limits, timeout=30) as client:

        async def one() -> None:
            nonlocal errors
            while time.perf_counter() < stop:
                t0 = time.perf_counter()
                r = await client.post(url, json=body)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies), errors, latencies, elapsed


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=16)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="reel-bench-"))
    reel = ReelServer(
        tmp / "data", workers=0, REEL_RATE_LIMIT_STATUS="1000000/minute", REEL_LOG_LEVEL="warning"
    ).start()
    bare_dir = tmp / "bare"
    bare_dir.mkdir()
    (bare_dir / "bare_app.py").write_text(BARE_APP)
    bare_port = free_port()
    bare = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bare_app:app",
            "--port",
            str(bare_port),
            "--log-level",
            "warning",
        ],
        cwd=bare_dir,
        env={**os.environ, "PYTHONPATH": str(bare_dir)},
    )
    try:
        key = str(reel.create_key(credits=10)["key"])
        headers = {"Authorization": f"Bearer {key}"}
        task = httpx.post(
            f"{reel.url}/api/sora-2/generate",
            headers=headers,
            json={"prompt": "bench", "mode": "textToVideo"},
        ).json()["taskId"]
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{bare_port}/docs", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        targets = {
            "bare FastAPI": f"http://127.0.0.1:{bare_port}/api/sora-2/check-status",
            "Reel check-status": f"{reel.url}/api/sora-2/check-status",
        }
        results = {}
        for name, url in targets.items():
            asyncio.run(drive(url, headers, {"taskId": task}, 1.0, args.concurrency))  # warm-up
            n, errors, lat, elapsed = asyncio.run(
                drive(url, headers, {"taskId": task}, args.seconds, args.concurrency)
            )
            results[name] = (n / elapsed, pct(lat, 50), pct(lat, 99), errors)
        print(f"{'target':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
        for name, (rps, p50, p99, errors) in results.items():
            print(f"{name:<20} {rps:>9.0f} {p50:>8.1f} {p99:>8.1f} {errors:>7}")
        base, ours = results["bare FastAPI"], results["Reel check-status"]
        print(f"\nthroughput ratio (Reel / bare): {ours[0] / base[0]:.2f}")
        print(f"p50 ratio: {ours[1] / base[1]:.2f}   p99 ratio: {ours[2] / base[2]:.2f}")
        print(
            f"concurrency {args.concurrency}, {args.seconds:.0f} s per target, "
            f"{os.cpu_count()} CPUs"
        )
    finally:
        bare.terminate()
        bare.wait(10)
        reel.stop()


if __name__ == "__main__":
    main()
