"""Loopback fakes of the upstream video APIs Reel drives, following each one's documented shapes.

- :class:`FakeFal` — the fal.ai queue API: ``POST /{app id}`` → ``{request_id, status_url,
  response_url, cancel_url}``; ``GET /{owner}/{app}/requests/{id}/status?logs=1`` (202 while
  queued or running, 200 when done); ``GET …/requests/{id}`` → ``{"video": {"url": …}}``;
  ``PUT …/requests/{id}/cancel`` → 202 ``CANCELLATION_REQUESTED`` / 400 ``ALREADY_COMPLETED``.
- :class:`FakeReplicate` — Replicate predictions: create under ``/v1/models/…``,
  ``/v1/predictions`` or ``/v1/deployments/…`` (``Prefer: wait``), ``GET /v1/predictions/{id}``,
  ``POST …/cancel``, ``GET /v1/predictions`` (newest first).
- :class:`FakeVideos` — OpenAI-compatible ``/v1/videos`` (as vLLM-Omni serves it): multipart
  create, ``GET /v1/videos/{id}``, ``/content``, ``DELETE``, and the job list.

Jobs advance with wall time: ``queue_s`` queued, then ``run_s`` running, then done. Faults are
queued per operation (:meth:`FakeUpstream.fail`): a status with headers and body, a delay, a
dropped connection, a malformed body, and whether the job is created before the fault hits.
Results are served from ``/files/…`` as a real tiny MP4; links can be made to expire.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import numpy as np

from reel.media.video import Audio, encode_frames


def tiny_mp4(tmp: Path, *, frames: int = 8, fps: int = 8, sound: bool = True) -> bytes:
    """A real, playable H.264 MP4 of ``frames`` 64x48 frames, with a 440 Hz tone unless
    ``sound`` is false (as a model that makes sound would deliver)."""
    rng = np.random.default_rng(7)
    path = tmp / f"fake-result-{sound}.mp4"
    t = np.arange(round(frames / fps * 16_000)) / 16_000
    tone = Audio(np.stack([0.3 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32), 16_000)
    encode_frames(
        (rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(frames)),
        path,
        fps=fps,
        audio=tone if sound else None,
    )
    return path.read_bytes()


@dataclass
class Fault:
    #: 0: answer normally (after ``delay``).
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    #: Seconds to wait before answering (a slow or hung server).
    delay: float = 0.0
    #: Close the connection without answering.
    drop: bool = False
    #: Answer 200 with a body that is not what the API promises.
    malformed: bool = False
    #: For submissions: create the job first, then misbehave (the answer is lost).
    after_create: bool = False


@dataclass
class Job:
    id: str
    input: dict[str, Any]
    created: float
    queue_s: float
    run_s: float
    fail: bool = False
    canceled: bool = False
    deleted: bool = False
    files: dict[str, Any] = field(default_factory=dict)
    prompt: str = ""

    def phase(self, now: float) -> str:
        if self.canceled:
            return "canceled"
        elapsed = now - self.created
        if elapsed < self.queue_s:
            return "queued"
        if elapsed < self.queue_s + self.run_s:
            return "running"
        return "failed" if self.fail else "succeeded"

    def percent(self, now: float) -> int:
        elapsed = now - self.created - self.queue_s
        return max(0, min(100, int(100 * elapsed / max(self.run_s, 1e-6))))


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float


class FakeUpstream:
    """Base: a ThreadingHTTPServer on 127.0.0.1 that dispatches to ``route``."""

    def __init__(self, video: bytes, *, queue_s: float = 0.2, run_s: float = 0.4) -> None:
        self.video = video
        self.queue_s = queue_s
        self.run_s = run_s
        #: Jobs created from now on fail upstream.
        self.fail_jobs = False
        #: How many downloads of a result link answer 410 before one works (expired links).
        self.expired_links = 0
        #: Serves result files on its own port, like a provider's CDN (a different origin).
        self.cdn: FakeUpstream | None = None
        #: Download token → file, for results this server serves itself.
        self.tokens: dict[str, bytes] = {}
        #: Input fields whose URL the upstream fetches on submit, as a real provider does.
        self.fetch_inputs: tuple[str, ...] = ()
        #: What those fetches got: (url, status, content type, body).
        self.fetched: list[tuple[str, int, str, bytes]] = []
        self.jobs: dict[str, Job] = {}
        self.seen: list[Seen] = []
        self.faults: dict[str, list[Fault]] = {}
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- control ------------------------------------------------------------------------------
    def fail(self, op: str, *faults: Fault) -> None:
        with self.lock:
            self.faults.setdefault(op, []).extend(faults)

    def calls(self, op: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if self.op_of(s) == op]

    def op_of(self, seen: Seen) -> str:
        raise NotImplementedError

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeUpstream:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                owner._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    # --- plumbing -----------------------------------------------------------------------------
    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        split = urlsplit(handler.path)
        seen = Seen(
            handler.command,
            split.path,
            parse_qs(split.query),
            {k.lower(): v for k, v in handler.headers.items()},
            body,
            time.time(),
        )
        with self.lock:
            self.seen.append(seen)
            op = self.op_of(seen)
            fault = self.faults[op].pop(0) if self.faults.get(op) else None
        normal = self.route(seen) if fault is not None and fault.after_create else None
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                handler.close_connection = True
                handler.connection.shutdown(2)
                return
            if fault.malformed:
                self._send(handler, 200, {"Content-Type": "application/json"}, b'{"nonsense": ')
                return
            if fault.status:
                payload = fault.body if fault.body is not None else {"detail": "injected fault"}
                self._send(handler, fault.status, fault.headers, payload)
                return
        if seen.path.startswith("/files/"):
            self._send(handler, *self._file(seen))
            return
        self._send(handler, *(normal or self.route(seen)))

    def _send(
        self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: Any
    ) -> None:
        if isinstance(payload, bytes):
            data = payload
        else:
            data = json.dumps(payload).encode()
            headers = {"Content-Type": "application/json", **headers}
        try:
            handler.send_response(status)
            for k, v in headers.items():
                handler.send_header(k, v)
            handler.send_header("Content-Length", str(len(data)))
            handler.end_headers()
            handler.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def route(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        raise NotImplementedError

    def new_job(self, body: dict[str, Any], *, prompt: str = "") -> Job:
        for name in self.fetch_inputs:
            url = body.get(name)
            if isinstance(url, str) and url.startswith("http"):
                r = httpx.get(url, timeout=10)
                self.fetched.append(
                    (url, r.status_code, r.headers.get("content-type", ""), r.content)
                )
        job = Job(
            id=secrets.token_hex(8),
            input=body,
            created=time.time(),
            queue_s=self.queue_s,
            run_s=self.run_s,
            fail=self.fail_jobs,
            prompt=prompt,
        )
        with self.lock:
            self.jobs[job.id] = job
        return job

    def file_url(self, job: Job) -> str:
        host = self.cdn or self
        token = secrets.token_hex(6)
        with host.lock:
            host.tokens[token] = self.video
        return f"{host.url}/files/{job.id}.mp4?token={token}"

    def _file(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        with self.lock:
            video = self.tokens.get(seen.query.get("token", [""])[0])
            if video is None:
                return 404, {}, b"no such file"
            if self.expired_links > 0:
                self.expired_links -= 1
                return 410, {}, b"link expired"
        return 200, {"Content-Type": "video/mp4"}, video

    def job(self) -> Job:
        """The only job (tests that create one)."""
        with self.lock:
            assert len(self.jobs) == 1, self.jobs
            return next(iter(self.jobs.values()))


class FakeCDN(FakeUpstream):
    """Only serves result files (``/files/…``), on its own port."""

    def op_of(self, seen: Seen) -> str:
        return "file"

    def route(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        return 404, {}, b"not here"


class _WithCDN(FakeUpstream):
    """An upstream whose results live on a separate CDN origin (fal.media, replicate.delivery)."""

    def __enter__(self) -> FakeUpstream:
        self.cdn = FakeCDN(self.video).__enter__()
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        assert self.cdn is not None
        self.cdn.__exit__(*exc)


# --- fal.ai --------------------------------------------------------------------------------------


class FakeFal(_WithCDN):
    """With ``?fal_webhook=URL`` on a submission, POSTs to that URL when the job ends."""

    def __init__(self, video: bytes, *, queue_s: float = 0.2, run_s: float = 0.4) -> None:
        super().__init__(video, queue_s=queue_s, run_s=run_s)
        #: Webhook calls made: (url, the answer's status or the error).
        self.webhooks: list[tuple[str, int | str]] = []

    def op_of(self, seen: Seen) -> str:
        if seen.path.startswith("/files/"):
            return "file"
        if "/requests/" not in seen.path:
            return "submit"
        if seen.path.endswith("/status"):
            return "status"
        if seen.path.endswith("/cancel"):
            return "cancel"
        return "result"

    def route(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        op = self.op_of(seen)
        if op == "submit" and seen.method == "POST":
            app = "/".join(seen.path.strip("/").split("/")[:2])
            job = self.new_job(json.loads(seen.body or b"{}"))
            root = f"{self.url}/{app}/requests/{job.id}"
            hook = seen.query.get("fal_webhook")
            if hook:
                threading.Thread(target=self._call_back, args=(hook[0], job), daemon=True).start()
            return (
                200,
                {},
                {
                    "request_id": job.id,
                    "status_url": f"{root}/status",
                    "response_url": root,
                    "cancel_url": f"{root}/cancel",
                    "queue_position": 0,
                },
            )
        parts = seen.path.strip("/").split("/")
        job = self.jobs.get(parts[3]) if len(parts) >= 4 else None
        if job is None:
            return 404, {}, {"detail": "Request not found"}
        now = time.time()
        phase = job.phase(now)
        if op == "status":
            body: dict[str, Any] = {"request_id": job.id}
            if phase == "queued":
                body |= {"status": "IN_QUEUE", "queue_position": 2}
            elif phase == "running":
                body |= {"status": "IN_PROGRESS"}
            else:
                body |= {"status": "COMPLETED", "metrics": {"inference_time": job.run_s}}
                if phase == "failed":
                    body |= {"error": "Model crashed", "error_type": "runner_disconnected"}
                if phase == "canceled":
                    body |= {"error": "Request was cancelled", "error_type": "request_cancelled"}
            if seen.query.get("logs") == ["1"]:
                pct = job.percent(now) if phase == "running" else 0
                body["logs"] = [
                    {"message": f"{pct}%|####| step", "level": "INFO", "timestamp": "2026-01-01"}
                ]
            return (200 if body["status"] == "COMPLETED" else 202), {}, body
        if op == "cancel" and seen.method == "PUT":
            if phase in ("queued", "running"):
                job.canceled = True
                return 202, {}, {"status": "CANCELLATION_REQUESTED"}
            return 400, {}, {"status": "ALREADY_COMPLETED"}
        # result
        if phase in ("queued", "running"):
            return 400, {}, {"detail": "Request is still in progress"}
        if phase != "succeeded":
            return 422, {}, {"detail": [{"msg": "generation failed", "type": "runtime_error"}]}
        return (
            200,
            {},
            {
                "video": {"url": self.file_url(job), "content_type": "video/mp4"},
                "seed": 42,
            },
        )

    def _call_back(self, url: str, job: Job) -> None:
        """What fal does with ``fal_webhook``: POST the outcome once the request has ended."""
        time.sleep(max(0.0, job.created + job.queue_s + job.run_s - time.time()) + 0.05)
        ok = job.phase(time.time()) == "succeeded"
        body = {
            "request_id": job.id,
            "gateway_request_id": job.id,
            "status": "OK" if ok else "ERROR",
            "payload": {"video": {"url": "https://fal.media/forged.mp4"}} if ok else None,
        }
        try:
            status = httpx.post(url, json=body, timeout=10).status_code
        except httpx.HTTPError as exc:
            status = repr(exc)
        with self.lock:
            self.webhooks.append((url, status))


# --- Replicate -----------------------------------------------------------------------------------


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


class FakeReplicate(_WithCDN):
    def op_of(self, seen: Seen) -> str:
        if seen.path.startswith("/files/"):
            return "file"
        if seen.method == "POST" and seen.path.endswith("/cancel"):
            return "cancel"
        if seen.method == "POST":
            return "submit"
        if seen.path.rstrip("/") == "/v1/predictions":
            return "list"
        return "status"

    def prediction(self, job: Job) -> dict[str, Any]:
        now = time.time()
        phase = job.phase(now)
        status = {"queued": "starting", "running": "processing"}.get(phase, phase)
        body: dict[str, Any] = {
            "id": job.id,
            "model": job.files.get("model", "owner/model"),
            "version": job.files.get("version", "v1"),
            "input": job.input,
            "status": status,
            "logs": f"loading\n{job.percent(now)}%|###| 12/50" if phase == "running" else "",
            "output": self.file_url(job) if phase == "succeeded" else None,
            "error": "CUDA out of memory" if phase == "failed" else None,
            "created_at": _iso(job.created),
            "urls": {
                "get": f"{self.url}/v1/predictions/{job.id}",
                "cancel": f"{self.url}/v1/predictions/{job.id}/cancel",
                "web": f"https://replicate.example/p/{job.id}",
            },
        }
        if phase in ("succeeded", "failed"):
            body["metrics"] = {"predict_time": job.run_s, "total_time": job.queue_s + job.run_s}
        return body

    def route(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        op = self.op_of(seen)
        if op == "submit":
            data = json.loads(seen.body or b"{}")
            job = self.new_job(data.get("input", {}))
            job.files["version"] = data.get("version", "")
            job.files["model"] = seen.path
            wait = seen.headers.get("prefer", "")
            if wait.startswith("wait"):
                limit = float(wait.partition("=")[2] or 60)
                end = time.time() + limit
                while time.time() < end and job.phase(time.time()) in ("queued", "running"):
                    time.sleep(0.05)
            return 201, {}, self.prediction(job)
        if op == "list":
            with self.lock:
                jobs = sorted(self.jobs.values(), key=lambda j: j.created, reverse=True)
            return (
                200,
                {},
                {"next": None, "previous": None, "results": [self.prediction(j) for j in jobs]},
            )
        job_id = seen.path.strip("/").split("/")[2]
        job = self.jobs.get(job_id)
        if job is None:
            return 404, {}, {"detail": "Not found."}
        if op == "cancel" and job.phase(time.time()) in ("queued", "running"):
            job.canceled = True
        return 200, {}, self.prediction(job)


# --- OpenAI-compatible /v1/videos ----------------------------------------------------------------


def parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        if part.get_filename():
            files[str(name)] = payload
        else:
            fields[str(name)] = payload.decode()
    return fields, files


class FakeVideos(FakeUpstream):
    def op_of(self, seen: Seen) -> str:
        if seen.path.startswith("/files/"):
            return "file"
        if seen.path.rstrip("/") == "/v1/videos":
            return "submit" if seen.method == "POST" else "list"
        if seen.method == "DELETE":
            return "cancel"
        return "content" if seen.path.endswith("/content") else "status"

    def video_object(self, job: Job) -> dict[str, Any]:
        now = time.time()
        phase = job.phase(now)
        status = {"running": "in_progress", "succeeded": "completed"}.get(phase, phase)
        body: dict[str, Any] = {
            "id": job.id,
            "object": "video",
            "model": job.input.get("model", "Wan-AI/Wan2.2-T2V-A14B-Diffusers"),
            "status": status,
            "progress": job.percent(now)
            if phase == "running"
            else (100 if phase == "succeeded" else 0),
            "created_at": int(job.created),
            "completed_at": int(now) if phase in ("succeeded", "failed") else None,
            "expires_at": None,
            "prompt": job.prompt,
            "size": job.input.get("size", "1280x720"),
            "seconds": job.input.get("seconds", "4"),
            "error": {"code": "generation_failed", "message": "NaN in latents"}
            if phase == "failed"
            else None,
        }
        return body

    def route(self, seen: Seen) -> tuple[int, dict[str, str], Any]:
        op = self.op_of(seen)
        if op == "submit":
            fields, files = parse_multipart(seen.headers.get("content-type", ""), seen.body)
            job = self.new_job(dict(fields), prompt=fields.get("prompt", ""))
            job.files = files
            return 200, {}, self.video_object(job)
        if op == "list":
            with self.lock:
                jobs = sorted(
                    (j for j in self.jobs.values() if not j.deleted),
                    key=lambda j: j.created,
                    reverse=True,
                )
            return (
                200,
                {},
                {"object": "list", "data": [self.video_object(j) for j in jobs], "has_more": False},
            )
        job_id = seen.path.strip("/").split("/")[2]
        job = self.jobs.get(job_id)
        if job is None or job.deleted:
            return (
                404,
                {},
                {"error": {"message": "Video not found", "type": "invalid_request_error"}},
            )
        if op == "cancel":
            job.canceled = job.phase(time.time()) in ("queued", "running")
            job.deleted = True
            return 200, {}, {"id": job.id, "object": "video.deleted", "deleted": True}
        if op == "content":
            if job.phase(time.time()) != "succeeded":
                return 404, {}, {"error": {"message": "Video is not ready"}}
            if self.expired_links > 0:
                with self.lock:
                    self.expired_links -= 1
                return 404, {}, {"error": {"message": "Video content has expired"}}
            return 200, {"Content-Type": "video/mp4"}, self.video
        return 200, {}, self.video_object(job)


def wait_for(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")
