"""A real `reel serve` process on a loopback port, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ReelServer:
    def __init__(
        self, data_dir: Path, *, workers: int = 1, cwd: Path | None = None, **env: str
    ) -> None:
        self.data_dir = data_dir
        #: The working directory of the server and of `cli` commands (default: inherited).
        self.cwd = cwd
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {
            **os.environ,
            "REEL_DATA_DIR": str(data_dir),
            "REEL_SANDBOX_PROFILE": "tiny",
            "REEL_SANDBOX_DELAY": "0.2",
            "REEL_LEASE_SECONDS": "4",
            "REEL_HEARTBEAT_SECONDS": "1",
            "REEL_REAPER_SECONDS": "1",
            "REEL_POLL_SECONDS": "0.1",
            "REEL_DRAIN_SECONDS": "10",
            "REEL_IMAGE_FETCH_ALLOW_HOSTS": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        if self.env.get("REEL_PUBLIC_URL") == "auto":  # scaled out: this process's own address
            self.env["REEL_PUBLIC_URL"] = self.url
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 30.0) -> ReelServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "reel",
                "serve",
                "--port",
                str(self.port),
                *(["--no-workers"] if self.workers == 0 else ["--workers", str(self.workers)]),
            ],
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not start:\n{self.log()}")

    @property
    def database_url(self) -> str:
        return self.env.get("REEL_DATABASE_URL") or f"sqlite:///{self.data_dir / 'reel.db'}"

    def query(self, sql: str, **params: object) -> list[tuple[object, ...]]:
        """Rows from the server's database (SQLite file or PostgreSQL)."""
        engine = create_engine(self.database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(sql), params)]
        finally:
            engine.dispose()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reel", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    def create_key(self, credits: int = 100, name: str = "e2e") -> dict[str, object]:
        out = self.cli("keys", "create", "--name", name, "--credits", str(credits), "--json")
        return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        if sig == signal.SIGKILL:  # the whole process group: API and workers die at once
            os.killpg(self.proc.pid, signal.SIGKILL)
        else:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)

    def kill_group(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)

    def __enter__(self) -> ReelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        if self.proc is not None and self.proc.poll() is None:
            self.kill_group()
