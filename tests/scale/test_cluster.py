"""Several machines' worth of processes on one: two API processes (`reel serve --no-workers`)
and `reel worker --models …` processes for two models, sharing only PostgreSQL (+ procrastinate),
Redis and an S3 server.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests import services as real
from tests.e2e.server import ReelServer

pytestmark = [pytest.mark.services, pytest.mark.slow]

MODELS = """
[models.alpha]
engine = "sandbox"

[models.beta]
engine = "sandbox"

[tiers]
sora2 = "alpha"
sora2-pro-standard = "beta"
sora2-pro-high = "beta"
"""
TIER_OF = {"alpha": "sora2", "beta": "sora2-pro-standard"}
PRICE = {"alpha": 4, "beta": 60}
#: Tasks of the main run (REEL_TEST_LONG=1: the long version).
TASKS = 200 if os.environ.get("REEL_TEST_LONG") else 60


@dataclass
class WorkerProcess:
    """`reel worker --models …` in its own process group (a machine: SIGKILL loses it all)."""

    models: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "reel", "worker", "--models", self.models, "-c", "1"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def owns(self, pid: int) -> bool:
        assert self.proc is not None
        try:
            return os.getpgid(pid) == self.proc.pid
        except ProcessLookupError:
            return False

    def kill(self) -> None:
        """Node loss: the supervisor and its worker processes die at once."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Cluster:
    env: dict[str, str]
    apis: list[ReelServer]
    tmp: Path
    workers: list[WorkerProcess] = field(default_factory=list)

    def worker(self, models: str, **env: str) -> WorkerProcess:
        log = self.tmp / f"worker-{len(self.workers)}.log"
        w = WorkerProcess(models, {**self.apis[0].env, **env}, log).start()
        self.workers.append(w)
        return w

    def query(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        return self.apis[0].query(sql, **params)

    def live_workers(self) -> dict[str, tuple[int, list[str]]]:
        rows = self.query("SELECT id, pid, models FROM workers")
        return {str(i): (int(p), _models(m)) for i, p, m in rows}  # type: ignore[call-overload]

    def wait_workers(self, n: int, timeout: float = 60) -> dict[str, tuple[int, list[str]]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.live_workers()
            if len(found) >= n:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{n} workers did not start:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-3000:] for p in self.tmp.glob("*.log"))

    def statuses(self, ids: list[str]) -> dict[str, tuple[str, int, str | None]]:
        rows = self.query("SELECT id, status, attempts, worker_id FROM tasks")
        wanted = set(ids)
        return {str(r[0]): (str(r[1]), int(r[2]), r[3]) for r in rows if r[0] in wanted}  # type: ignore[call-overload,misc]

    def wait_status(self, ids: list[str], status: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = self.statuses(ids)
            if len(now) == len(ids) and all(s == status for s, _, _ in now.values()):
                return
            time.sleep(0.3)
        raise AssertionError(f"not all {status}: {self.statuses(ids)}\n{self.logs()}")

    def charges(self, ids: list[str]) -> dict[str, list[str]]:
        rows = self.query("SELECT task_id, kind FROM ledger_entries WHERE task_id IS NOT NULL")
        kinds: dict[str, list[str]] = {}
        for task_id, kind in rows:
            if task_id in ids:
                kinds.setdefault(str(task_id), []).append(str(kind))
        return kinds


def _models(value: object) -> list[str]:
    return list(json.loads(value) if isinstance(value, str) else value)  # type: ignore[call-overload]


def submit(api: ReelServer, key: str, model: str, i: int = 0) -> httpx.Response:
    return httpx.post(
        f"{api.url}/api/sora-2/generate",
        json={"prompt": f"{model} {i}", "mode": "textToVideo", "modelTier": TIER_OF[model]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    )


@pytest.fixture(scope="module")
def cluster(
    postgres: real.Postgres, s3: real.S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    real.check_redis()
    tmp = tmp_path_factory.mktemp("cluster")
    models = tmp / "models.toml"
    models.write_text(MODELS)
    scaled = real.scaled_env(postgres, s3, public_url="auto", migrated=False)
    env = {
        **scaled.env,
        "REEL_MODELS_FILE": str(models),
        "REEL_SANDBOX_DELAY": "0",
        "REEL_RATE_LIMIT_CREATE": f"{TASKS + 10}/hour",
        "REEL_MAX_ACTIVE_TASKS_PER_KEY": "1000",
        "REEL_DATA_DIR": str(tmp / "data"),
    }
    first = ReelServer(tmp / "a", workers=0, **env)
    # A fresh database: servers refuse it until `reel migrate` (safe to run concurrently).
    refused = first.cli("serve", "--port", str(first.port), check=False)
    assert refused.returncode != 0 and "reel migrate" in refused.stderr + refused.stdout
    migrations = [
        subprocess.Popen([sys.executable, "-m", "reel", "migrate"], env=first.env) for _ in range(2)
    ]
    assert [p.wait(120) for p in migrations] == [0, 0]
    apis = [first.start(), ReelServer(tmp / "b", workers=0, **env).start()]
    c = Cluster(env, apis, tmp)
    try:
        yield c
    finally:
        for w in c.workers:
            w.kill()
        for api in apis:
            api.stop()
        real.delete_redis_prefix(env["REEL_REDIS_PREFIX"])


def test_scaled_out_settings_fail_fast_without_shared_secrets(cluster: Cluster) -> None:
    env = {k: v for k, v in cluster.apis[0].env.items() if k != "REEL_SECRET_KEY"}
    out = subprocess.run(
        [sys.executable, "-m", "reel", "worker", "--models", "alpha"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "REEL_SECRET_KEY must be set" in out.stderr


def test_many_tasks_two_apis_three_workers_each_on_its_model(cluster: Cluster) -> None:
    cluster.worker("alpha")
    cluster.worker("alpha")
    cluster.worker("beta")
    serving = cluster.wait_workers(3)
    half = TASKS // 2
    key = str(cluster.apis[0].create_key(credits=half * 4 + half * 60 + 10 * 4)["key"])
    jobs = [(cluster.apis[i % 2], "alpha" if i % 4 < 2 else "beta", i) for i in range(TASKS)]
    with ThreadPoolExecutor(4) as pool:
        first = list(pool.map(lambda j: submit(j[0], key, j[1], j[2]), jobs))
    assert [r.status_code for r in first] == [200] * TASKS, first[0].text
    ids = [str(r.json()["taskId"]) for r in first]
    model_of = {tid: model for tid, (_, model, _) in zip(ids, jobs, strict=True)}
    # The create limit is TASKS + 10 per hour per key, counted in Redis across both API processes.
    extra = [submit(cluster.apis[i % 2], key, "alpha", i).status_code for i in range(15)]
    assert extra == [200] * 10 + [429] * 5, extra
    cluster.wait_status(ids, "completed", timeout=240)
    models_of_worker = {wid: models for wid, (_, models) in serving.items()}
    for tid, (_, attempts, worker_id) in cluster.statuses(ids).items():
        assert worker_id in models_of_worker, worker_id
        assert model_of[tid] in models_of_worker[str(worker_id)]  # served by its own model
        assert attempts == 1
    assert all(k == ["charge"] for k in cluster.charges(ids).values())
    assert len({w for _, _, w in cluster.statuses(ids).values()}) == 3  # all three took work
    queue = json.loads(cluster.apis[1].cli("queue", "--json").stdout)
    assert {q["model"]: q["workers"] for q in queue} == {"alpha": 2, "beta": 1}
    listed = json.loads(cluster.apis[1].cli("workers", "--json").stdout)
    assert sorted(tuple(w["models"]) for w in listed) == [("alpha",), ("alpha",), ("beta",)]
    metrics = httpx.get(f"{cluster.apis[1].url}/metrics", timeout=10).text
    assert f'reel_tasks{{status="completed"}} {TASKS + 10}.0' in metrics
    for w in cluster.workers:
        w.stop()
    assert cluster.live_workers() == {}  # a stopped worker withdraws its heartbeat row


def test_sigkill_worker_midway_task_completes_on_the_other_worker_charged_once(
    cluster: Cluster,
) -> None:
    slow = {"REEL_SANDBOX_DELAY": "3"}
    pair = [cluster.worker("alpha", **slow), cluster.worker("alpha", **slow)]
    cluster.wait_workers(2)
    key = str(cluster.apis[0].create_key(credits=10)["key"])
    tid = str(submit(cluster.apis[1], key, "alpha").json()["taskId"])
    cluster.wait_status([tid], "running", timeout=30)
    holder = cluster.statuses([tid])[tid][2]
    pid = cluster.live_workers()[str(holder)][0]
    [victim] = [w for w in pair if w.owns(pid)]
    victim.kill()
    cluster.wait_status([tid], "completed", timeout=60)
    _, attempts, finisher = cluster.statuses([tid])[tid]
    assert attempts == 2 and finisher != holder
    assert cluster.charges([tid]) == {tid: ["charge"]}
    for w in pair:
        w.stop()


def test_only_worker_of_a_model_killed_its_tasks_wait_then_run(cluster: Cluster) -> None:
    only = cluster.worker("beta", REEL_SANDBOX_DELAY="3")
    cluster.wait_workers(1)
    key = str(cluster.apis[0].create_key(credits=200)["key"])
    first = str(submit(cluster.apis[0], key, "beta").json()["taskId"])
    cluster.wait_status([first], "running", timeout=30)
    only.kill()
    second = str(submit(cluster.apis[1], key, "beta").json()["taskId"])
    time.sleep(6)  # past the 4 s lease: nobody serves beta, so nothing moves
    states = cluster.statuses([first, second])
    assert states[second][0] == "queued" and states[first][0] in ("running", "queued")
    queue = json.loads(cluster.apis[0].cli("queue", "--json").stdout)
    assert {q["model"]: q["queued"] + q["running"] for q in queue}["beta"] == 2
    cluster.worker("beta")  # a beta worker starts: its reaper requeues, it runs both
    cluster.wait_status([first, second], "completed", timeout=60)
    assert cluster.statuses([first])[first][1] == 2
    assert cluster.charges([first, second]) == {first: ["charge"], second: ["charge"]}
