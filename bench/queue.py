"""Queue benchmark: the embedded task-table queue (SQLite) against procrastinate (PostgreSQL).

For each backend, in one run: `reel worker -c WORKERS` processes serve the sandbox model with no
simulated delay and the tiny profile (so the engine takes next to no time). The producer creates
tasks through the service's own create path (price → charge → insert → enqueue, one
transaction), local media storage for both, then measures

* enqueue→start latency: ``started_at - created_at`` of SAMPLES tasks created one at a time,
  each once the previous one finished (idle workers), p50 / p95; and commit→start, from the
  moment the create transaction committed (what the queue itself adds);
* beside them, a bare procrastinate worker's defer→start of a no-op sync job on the same
  PostgreSQL (the floor procrastinate itself sets);
* drain rate: TASKS tasks created back to back while the workers run; tasks per second from
  the first create to the last completion.

Prints a table and the procrastinate / embedded ratios.

    python bench/queue.py [--tasks 1000] [--workers 2] [--samples 30]
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the
# standard library's `queue`; put the repository root there instead.
if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path.pop(0)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import os
import secrets
import signal
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass

from sqlalchemy import func, select

from reel.config import Settings
from reel.db.migrate import upgrade
from reel.db.models import ApiKey, Task, Worker
from reel.service import keys, tasks
from reel.service.context import Services, build_services
from reel.types import Aspect, Mode, TaskStatus, Tier

PG_ADMIN = os.environ.get("REEL_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CMD = tasks.NewTask(
    prompt="bench", mode=Mode.TEXT_TO_VIDEO, tier=Tier.SORA2, aspect=Aspect.PORTRAIT, duration_s=10
)


@dataclass
class Result:
    name: str
    p50_ms: float
    p95_ms: float
    commit_p50_ms: float
    enqueue_per_s: float
    drain_per_s: float


def env_for(data_dir: Path, database_url: str | None) -> dict[str, str]:
    env = {
        "REEL_DATA_DIR": str(data_dir),
        "REEL_SANDBOX_PROFILE": "tiny",
        "REEL_SANDBOX_DELAY": "0",
        "REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000000",
        "REEL_HEARTBEAT_SECONDS": "2",
        "REEL_LEASE_SECONDS": "30",
        "REEL_POLL_SECONDS": "0.05",
        "REEL_LOG_LEVEL": "warning",
    }
    if database_url:
        env |= {
            "REEL_DATABASE_URL": database_url,
            "REEL_SECRET_KEY": secrets.token_urlsafe(32),
            "REEL_PUBLIC_URL": "http://127.0.0.1:8000",
        }
    return env


def wait_done(services: Services, ids: list[str], timeout: float) -> float:
    """Waits until every task is final; returns the last ``finished_at``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with services.db.read() as session:
            pending = session.scalar(
                select(func.count())
                .select_from(Task)
                .where(Task.id.in_(ids), Task.status.in_([TaskStatus.QUEUED, TaskStatus.RUNNING]))
            )
            if not pending:
                failed = session.scalar(
                    select(func.count())
                    .select_from(Task)
                    .where(Task.id.in_(ids), Task.status != TaskStatus.COMPLETED)
                )
                assert not failed, f"{failed} tasks did not complete"
                return float(
                    session.scalar(select(func.max(Task.finished_at)).where(Task.id.in_(ids)))
                )
        time.sleep(0.2)
    raise TimeoutError(f"tasks not done after {timeout}s")


def run(name: str, env: dict[str, str], n_tasks: int, n_workers: int, samples: int) -> Result:
    settings = Settings(**{k.removeprefix("REEL_").lower(): v for k, v in env.items()})
    services = build_services(settings)
    upgrade(services.db.engine)
    with services.db.write() as session:
        issued = keys.issue(session, name="bench", credits=4 * (n_tasks + samples))
    with services.db.read() as session:
        key = session.get(ApiKey, issued.id)
    assert key is not None
    worker = subprocess.Popen(
        [sys.executable, "-m", "reel", "worker", "-c", str(n_workers)],
        env={**os.environ, **env},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with services.db.read() as session:
                if session.scalar(select(func.count()).select_from(Worker)) == n_workers:
                    break
            time.sleep(0.2)
        time.sleep(1.0)  # let every worker reach its idle wait
        sampled: dict[str, float] = {}
        for _ in range(samples):  # one at a time, each to idle workers (tasks outlast 0.3 s)
            task_id = tasks.create(services, key, CMD).id
            sampled[task_id] = time.time()  # committed: from here on a worker can see it
            wait_done(services, [task_id], 120)
            time.sleep(0.3)
        with services.db.read() as session:
            rows = session.execute(
                select(Task.id, Task.created_at, Task.started_at).where(Task.id.in_(sampled))
            ).all()
        latencies = sorted((started - created) * 1000 for _, created, started in rows)
        after_commit = sorted((started - sampled[i]) * 1000 for i, _, started in rows)
        started = time.time()
        ids = [tasks.create(services, key, CMD).id for _ in range(n_tasks)]
        enqueued = time.time()
        last = wait_done(services, ids, 1800)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
        services.close()
    return Result(
        name,
        statistics.median(latencies),
        latencies[max(0, round(0.95 * len(latencies)) - 1)],
        statistics.median(after_commit),
        n_tasks / (enqueued - started),
        n_tasks / (last - started),
    )


BARE_WORKER = """
import asyncio, sys, time
import procrastinate

app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=sys.argv[1]))

@app.task(name="bench.noop", queue="bare")
def noop(due: float) -> None:  # a sync job, like Reel's
    print(f"{(time.time() - due) * 1000:.3f}", flush=True)

async def main() -> None:
    async with app.open_async():
        print("ready", flush=True)
        await app.run_worker_async(queues=["bare"], concurrency=1, delete_jobs="always")

asyncio.run(main())
"""


def bare_pickup(conninfo: str, samples: int) -> list[float]:
    """Defer→start latencies (ms) of no-op jobs on a bare procrastinate worker, same database."""
    import procrastinate

    worker = subprocess.Popen(
        [sys.executable, "-c", BARE_WORKER, conninfo],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert worker.stdout is not None
    try:
        assert worker.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))
        latencies = []
        with app.open():
            for _ in range(samples):
                app.configure_task("bench.noop", queue="bare").defer(due=time.time())
                latencies.append(float(worker.stdout.readline()))
                time.sleep(0.3)
        return sorted(latencies)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()

    import psycopg

    db = f"reel_bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {db}")  # type: ignore[arg-type]
    pg_url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + "/" + db
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, url in (("embedded (SQLite)", None), ("procrastinate (PostgreSQL)", pg_url)):
                data = Path(tmp) / name.split()[0]
                print(f"running {name} …", flush=True)
                results.append(
                    run(name, env_for(data, url), args.tasks, args.workers, args.samples)
                )
        print("running a bare procrastinate worker …", flush=True)
        bare = bare_pickup(PG_ADMIN.rsplit("/", 1)[0] + "/" + db, args.samples)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")  # type: ignore[arg-type]

    print(
        f"\n{args.tasks} sandbox tasks (tiny, no delay), {args.workers} worker processes, "
        f"latency over {args.samples} single tasks\n"
    )
    print("| queue | enqueue→start p50 | p95 | commit→start p50 | creates/s | drain tasks/s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.name} | {r.p50_ms:.1f} ms | {r.p95_ms:.1f} ms | {r.commit_p50_ms:.1f} ms | "
            f"{r.enqueue_per_s:.0f} | {r.drain_per_s:.1f} |"
        )
    bare_p95 = bare[max(0, round(0.95 * len(bare)) - 1)]
    print(
        f"| bare procrastinate worker (no-op job) | {statistics.median(bare):.1f} ms | "
        f"{bare_p95:.1f} ms | | |"
    )
    base, other = results
    ratios = {
        "latency p50": other.p50_ms / base.p50_ms,
        "p95": other.p95_ms / base.p95_ms,
        "creates/s": other.enqueue_per_s / base.enqueue_per_s,
        "drain": other.drain_per_s / base.drain_per_s,
    }
    print("\nprocrastinate / embedded: " + ", ".join(f"{k} ×{v:.2f}" for k, v in ratios.items()))


if __name__ == "__main__":
    main()
