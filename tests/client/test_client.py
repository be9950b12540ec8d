"""reel.client against httpx.MockTransport: no server, no sleeping, no clock."""

from __future__ import annotations

import ast
import asyncio
import inspect
import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

import httpx
import pytest

import reel.client
from reel.client import (
    ERROR_CODES,
    ActiveTaskLimitError,
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    BadRequestError,
    Client,
    GenerationFailedError,
    ImageFetchFailedError,
    ImageRequiredError,
    ImageUrlsRequiredError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidParameterError,
    LoginRequiredError,
    NotFoundError,
    PromptRequiredError,
    RateLimitError,
    ReelAPIError,
    ReelClientError,
    ServiceBusyError,
    TaskCanceledError,
    TaskIdRequiredError,
    TaskNotFoundError,
    TaskStatus,
    WaitTimeoutError,
)

SERVER = "http://reel.test"
KEY = "sk-test"
Handler = Callable[[httpx.Request], httpx.Response]


class MakeClient(Protocol):
    def __call__(self, handler: Handler, **kwargs: object) -> Client: ...


class FakeTime:
    """Injected clock and sleep: sleeping only advances the clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Iterator[MakeClient]:
    clients: list[Client] = []

    def make(handler: Handler, **kwargs: object) -> Client:
        options: dict[str, object] = {
            "transport": httpx.MockTransport(handler),
            "sleep": fake_time.sleep,
            "clock": fake_time.clock,
        }
        options.update(kwargs)
        client = Client(SERVER, KEY, **options)  # type: ignore[arg-type]
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def error(status: int, code: str, message: str = "nope", **extra: object) -> httpx.Response:
    headers = {"X-Request-Id": "req_1"}
    retry_after = extra.pop("retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    body = {"success": False, "error": message, "errorCode": code, **extra}
    return httpx.Response(status, json=body, headers=headers)


def processing(percent: float, stage: str = "generating", **extra: object) -> dict[str, object]:
    return {
        "success": True,
        "status": "processing",
        "taskId": "task_1",
        "progress": stage,
        "progressPercent": percent,
        "queuePosition": None,
        "createdAt": "2025-01-02T03:04:05Z",
        "engine": "sandbox",
        **extra,
    }


COMPLETED = {
    "success": True,
    "status": "completed",
    "taskId": "task_1",
    "videoUrl": "http://media.test/v/task_1.mp4?sig=abc",
    "generationTime": 42,
    "creditsUsed": 4,
}
FAILED = {
    "success": False,
    "status": "failed",
    "taskId": "task_1",
    "error": "Video generation failed",
    "errorCode": "GENERATION_FAILED",
}


def replay(
    *responses: httpx.Response | Mapping[str, object],
) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering with ``responses`` in order; dicts become 200 JSON."""
    queue = list(responses)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        return answer if isinstance(answer, httpx.Response) else httpx.Response(200, json=answer)

    return handler, seen


# --- package surface ----------------------------------------------------------------------


def test_all_names_exist_and_every_exception_is_exported() -> None:
    for name in reel.client.__all__:
        assert hasattr(reel.client, name), name
    exceptions = {
        obj
        for _, obj in inspect.getmembers(reel.client._errors, inspect.isclass)  # pyright: ignore[reportPrivateUsage]
        if issubclass(obj, ReelClientError)
    }
    exported = {id(getattr(reel.client, name)) for name in reel.client.__all__}
    assert {id(cls) for cls in exceptions} <= exported


def test_client_imports_no_other_reel_module() -> None:
    for path in Path(reel.client.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert not (node.module or "").startswith("reel"), path.name
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith("reel") for a in node.names), path.name


# --- errors -------------------------------------------------------------------------------

CODES: list[tuple[str, int, type[ReelAPIError]]] = [
    ("LOGIN_REQUIRED", 401, LoginRequiredError),
    ("API_KEY_RATE_LIMIT_EXCEEDED", 429, RateLimitError),
    ("ACTIVE_TASK_LIMIT_EXCEEDED", 429, ActiveTaskLimitError),
    ("INSUFFICIENT_CREDITS", 402, InsufficientCreditsError),
    ("PROMPT_REQUIRED", 400, PromptRequiredError),
    ("IMAGE_REQUIRED", 400, ImageRequiredError),
    ("IMAGE_URLS_REQUIRED", 400, ImageUrlsRequiredError),
    ("IMAGE_FETCH_FAILED", 400, ImageFetchFailedError),
    ("INVALID_PARAMETER", 400, InvalidParameterError),
    ("GENERATION_FAILED", 500, GenerationFailedError),
    ("TASK_ID_REQUIRED", 400, TaskIdRequiredError),
    ("TASK_NOT_FOUND", 404, TaskNotFoundError),
    ("TASK_CANCELED", 409, TaskCanceledError),
    ("SERVICE_BUSY", 503, ServiceBusyError),
    ("INTERNAL_ERROR", 500, InternalServerError),
]


def test_every_contract_code_has_a_class() -> None:
    assert {code for code, _, _ in CODES} == set(ERROR_CODES)


@pytest.mark.parametrize(("code", "status", "cls"), CODES)
def test_error_code_maps_to_class(
    make_client: MakeClient, code: str, status: int, cls: type[ReelAPIError]
) -> None:
    client = make_client(lambda _: error(status, code, "human message"), max_retries=0)
    with pytest.raises(cls) as info:
        client.generate("a fox")
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert info.value.error_code == code
    assert info.value.request_id == "req_1"
    assert info.value.message == "human message"
    assert "human message" in str(info.value) and "req_1" in str(info.value)


@pytest.mark.parametrize(
    ("response", "cls"),
    [
        (error(400, "SOMETHING_NEW"), BadRequestError),
        (error(404, "GONE_FISHING"), NotFoundError),
        (error(429, "NEW_LIMIT"), RateLimitError),
        (httpx.Response(502, text="<html>bad gateway</html>"), InternalServerError),
        (httpx.Response(418, json={"detail": "teapot"}), ReelAPIError),
    ],
)
def test_unknown_code_falls_back_by_status(
    make_client: MakeClient, response: httpx.Response, cls: type[ReelAPIError]
) -> None:
    client = make_client(lambda _: response)
    with pytest.raises(ReelAPIError) as info:
        client.generate("a fox")
    assert type(info.value) is cls
    assert info.value.message


def test_error_extras(make_client: MakeClient) -> None:
    client = make_client(lambda _: error(402, "INSUFFICIENT_CREDITS", requiredCredits=60))
    with pytest.raises(InsufficientCreditsError) as credits:
        client.generate("a fox", tier="sora2-pro-standard")
    assert credits.value.required_credits == 60

    client = make_client(lambda _: error(400, "INVALID_PARAMETER", param="videoDuration"))
    with pytest.raises(InvalidParameterError) as param:
        client.generate("a fox")
    assert param.value.param == "videoDuration"

    client = make_client(lambda _: error(429, "API_KEY_RATE_LIMIT_EXCEEDED", retry_after=17))
    with pytest.raises(RateLimitError) as limited:
        client.generate("a fox")
    assert limited.value.retry_after == 17.0


# --- generate / check_status --------------------------------------------------------------


def test_generate_sends_contract_body(make_client: MakeClient) -> None:
    handler, seen = replay({"success": True, "status": "processing", "taskId": "task_9"})
    submitted = make_client(handler).generate(
        "a fox", image_urls=["https://img.test/a.png"], tier="sora2-pro-high", aspect="landscape"
    )
    assert (submitted.task_id, submitted.status) == ("task_9", "processing")
    request = seen[0]
    assert request.url == f"{SERVER}/api/sora-2/generate"
    assert request.headers["Authorization"] == f"Bearer {KEY}"
    assert "Idempotency-Key" not in request.headers
    assert json.loads(request.content) == {
        "prompt": "a fox",
        "mode": "imageToVideo",
        "modelTier": "sora2-pro-high",
        "aspectRatio": "landscape",
        "videoDuration": "10",
        "imageUrls": ["https://img.test/a.png"],
    }


def test_generate_sends_callback_url(make_client: MakeClient) -> None:
    handler, seen = replay({"success": True, "status": "processing", "taskId": "task_9"})
    make_client(handler).generate("a fox", callback_url="https://hooks.test/reel")
    assert json.loads(seen[0].content)["callBackUrl"] == "https://hooks.test/reel"


def test_check_status_parses_processing_extras(make_client: MakeClient) -> None:
    handler, seen = replay(processing(37.5, "queued", queuePosition=3))
    status = make_client(handler).check_status("task_1")
    assert json.loads(seen[0].content) == {"taskId": "task_1"}
    assert status.status == "processing" and not status.done
    assert (status.stage, status.percent, status.queue_position) == ("queued", 37.5, 3)
    assert status.created_at is not None and status.created_at.year == 2025
    assert status.engine == "sandbox"


def test_check_status_returns_failed_task(make_client: MakeClient) -> None:
    handler, _ = replay(FAILED)
    status = make_client(handler).check_status("task_1")
    assert status.status == "failed" and status.done
    assert status.error == "Video generation failed"
    assert status.error_code == "GENERATION_FAILED"
    assert not status.canceled


# --- wait ---------------------------------------------------------------------------------


def test_wait_reports_increasing_progress(make_client: MakeClient, fake_time: FakeTime) -> None:
    handler, _ = replay(
        processing(0, "queued"), processing(40), processing(90, "encoding"), COMPLETED
    )
    seen: list[TaskStatus] = []
    final = make_client(handler).wait("task_1", on_progress=seen.append, poll_interval=5)
    assert final.status == "completed"
    assert final.video_url == COMPLETED["videoUrl"]
    assert (final.generation_time, final.credits_used) == (42, 4)
    percents = [s.percent or 0.0 for s in seen[:-1]]
    assert percents == [0, 40, 90] and percents == sorted(percents)
    assert seen[-1] is final
    assert fake_time.sleeps == [5, 5, 5]


def test_the_last_progress_callback_names_the_outcome(make_client: MakeClient) -> None:
    """A finished task's status has no ``progress`` field; the last callback still has a
    stage: the outcome."""
    handler, _ = replay(processing(40, "generating"), COMPLETED)
    seen: list[TaskStatus] = []
    make_client(handler).wait("task_1", on_progress=seen.append, poll_interval=0)
    assert [(s.stage, s.percent) for s in seen] == [("generating", 40), ("completed", None)]
    failed = make_client(replay(FAILED)[0]).check_status("task_1")
    assert failed.stage == "failed"


def test_wait_raises_generation_failed(make_client: MakeClient) -> None:
    handler, _ = replay(processing(10), FAILED)
    with pytest.raises(GenerationFailedError) as info:
        make_client(handler).wait("task_1")
    assert info.value.task is not None and info.value.task.status == "failed"
    assert info.value.status_code is None
    assert info.value.message == "Video generation failed"


@pytest.mark.parametrize(
    "body",
    [
        {"success": False, "status": "failed", "errorCode": "TASK_CANCELED", "error": "canceled"},
        {"success": False, "status": "failed", "canceled": True, "error": "canceled"},
    ],
)
def test_wait_raises_task_canceled(make_client: MakeClient, body: dict[str, object]) -> None:
    handler, _ = replay(body)
    with pytest.raises(TaskCanceledError) as info:
        make_client(handler).wait("task_1")
    assert info.value.error_code == "TASK_CANCELED"
    assert info.value.task is not None and info.value.task.canceled


def test_wait_raises_class_of_task_error_code(make_client: MakeClient) -> None:
    body = {"success": False, "status": "failed", "errorCode": "IMAGE_FETCH_FAILED", "error": "x"}
    handler, _ = replay(body)
    with pytest.raises(ImageFetchFailedError):
        make_client(handler).wait("task_1")


def test_wait_times_out(make_client: MakeClient, fake_time: FakeTime) -> None:
    client = make_client(lambda _: httpx.Response(200, json=processing(5)))
    with pytest.raises(WaitTimeoutError) as info:
        client.wait("task_1", poll_interval=2, timeout=5)
    assert isinstance(info.value, TimeoutError)
    assert info.value.task.percent == 5
    assert fake_time.sleeps == [2, 2, 1]


# --- retries ------------------------------------------------------------------------------


def test_check_status_honours_retry_after(make_client: MakeClient, fake_time: FakeTime) -> None:
    handler, seen = replay(error(429, "API_KEY_RATE_LIMIT_EXCEEDED", retry_after=3), COMPLETED)
    status = make_client(handler).check_status("task_1")
    assert status.status == "completed"
    assert fake_time.sleeps == [3.0]
    assert len(seen) == 2


def test_service_busy_retries_are_bounded(make_client: MakeClient, fake_time: FakeTime) -> None:
    handler, seen = replay(*[error(503, "SERVICE_BUSY") for _ in range(3)])
    with pytest.raises(ServiceBusyError):
        make_client(handler, max_retries=2).check_status("task_1")
    assert len(seen) == 3
    assert fake_time.sleeps == [0.5, 1.0]


def test_long_retry_after_is_raised_not_slept(make_client: MakeClient, fake_time: FakeTime) -> None:
    handler, seen = replay(error(429, "API_KEY_RATE_LIMIT_EXCEEDED", retry_after=3600))
    with pytest.raises(RateLimitError) as info:
        make_client(handler).check_status("task_1")
    assert info.value.retry_after == 3600
    assert len(seen) == 1 and fake_time.sleeps == []


@pytest.mark.parametrize(
    "response",
    [
        error(429, "API_KEY_RATE_LIMIT_EXCEEDED", retry_after=1),
        error(429, "ACTIVE_TASK_LIMIT_EXCEEDED"),
        error(402, "INSUFFICIENT_CREDITS"),
        error(503, "SERVICE_BUSY"),
    ],
)
def test_generate_is_not_retried_on_http_errors(
    make_client: MakeClient, fake_time: FakeTime, response: httpx.Response
) -> None:
    handler, seen = replay(response, {"success": True, "taskId": "task_2"})
    with pytest.raises(ReelAPIError):
        make_client(handler).generate("a fox")
    assert len(seen) == 1 and fake_time.sleeps == []


def test_generate_without_key_is_not_retried_on_connection_error(
    make_client: MakeClient,
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(APIConnectionError) as info:
        make_client(handler).generate("a fox")
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert len(calls) == 1


def test_generate_with_idempotency_key_is_retried_on_connection_error(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json={"success": True, "status": "processing", "taskId": "t"})

    submitted = make_client(handler).generate("a fox", idempotency_key="idem-1")
    assert submitted.task_id == "t"
    assert [c.headers["Idempotency-Key"] for c in calls] == ["idem-1", "idem-1"]
    assert fake_time.sleeps == [0.5]


def test_check_status_connection_errors_exhaust_retries(
    make_client: MakeClient, fake_time: FakeTime
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(APITimeoutError):
        make_client(handler, max_retries=3).check_status("task_1")
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


# --- configuration ------------------------------------------------------------------------


def test_env_var_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    handler, seen = replay(COMPLETED, COMPLETED)
    monkeypatch.setenv("REEL_SERVER", "http://env.test:9000/")
    monkeypatch.setenv("REEL_API_KEY", "sk-env")
    with Client(transport=httpx.MockTransport(handler)) as client:
        assert client.server == "http://env.test:9000"
        client.check_status("task_1")
    assert seen[0].url == "http://env.test:9000/api/sora-2/check-status"
    assert seen[0].headers["Authorization"] == "Bearer sk-env"

    monkeypatch.delenv("REEL_SERVER")
    monkeypatch.delenv("REEL_API_KEY")
    with Client(transport=httpx.MockTransport(handler)) as client:
        assert (client.server, client.api_key) == ("http://127.0.0.1:8000", None)
        client.check_status("task_1")
    assert seen[1].url == "http://127.0.0.1:8000/api/sora-2/check-status"
    assert "Authorization" not in seen[1].headers


def test_explicit_arguments_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REEL_SERVER", "http://env.test")
    monkeypatch.setenv("REEL_API_KEY", "sk-env")
    with Client("http://arg.test", "sk-arg") as client:
        assert (client.server, client.api_key) == ("http://arg.test", "sk-arg")


# --- download -----------------------------------------------------------------------------

VIDEO = b"\x00\x00\x00\x18ftypmp42" * 1000


class BrokenStream(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield VIDEO[:100]
        raise httpx.ReadError("connection reset")


class AsyncBrokenStream(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield VIDEO[:100]
        raise httpx.ReadError("connection reset")


def test_download_streams_to_path(make_client: MakeClient, tmp_path: Path) -> None:
    handler, seen = replay(httpx.Response(200, content=VIDEO))
    progress: list[tuple[int, int | None]] = []
    status = TaskStatus.from_json(COMPLETED)
    target = tmp_path / "out" / "fox.mp4"
    path = make_client(handler).download(
        status, target, on_bytes=lambda done, total: progress.append((done, total))
    )
    assert path == target and target.read_bytes() == VIDEO
    assert progress[0] == (0, len(VIDEO)) and progress[-1] == (len(VIDEO), len(VIDEO))
    assert str(seen[0].url) == COMPLETED["videoUrl"]
    assert "Authorization" not in seen[0].headers
    assert list(target.parent.iterdir()) == [target]


def test_download_interrupted_leaves_no_file(make_client: MakeClient, tmp_path: Path) -> None:
    headers = {"Content-Length": str(len(VIDEO))}
    handler, _ = replay(httpx.Response(200, headers=headers, stream=BrokenStream()))
    target = tmp_path / "fox.mp4"
    with pytest.raises(APIConnectionError):
        make_client(handler).download("http://media.test/v.mp4", target)
    assert list(tmp_path.iterdir()) == []


def test_download_never_replaces_with_partial_file(make_client: MakeClient, tmp_path: Path) -> None:
    target = tmp_path / "fox.mp4"
    target.write_bytes(b"old")
    handler, _ = replay(httpx.Response(200, stream=BrokenStream()))
    with pytest.raises(APIConnectionError):
        make_client(handler).download("http://media.test/v.mp4", target)
    assert target.read_bytes() == b"old"
    assert list(tmp_path.iterdir()) == [target]


def test_download_short_body_is_an_error(make_client: MakeClient, tmp_path: Path) -> None:
    response = httpx.Response(200, headers={"Content-Length": "999999"}, content=VIDEO)
    response.headers["Content-Length"] = "999999"
    handler, _ = replay(response)
    with pytest.raises(APIConnectionError, match="download ended"):
        make_client(handler).download("http://media.test/v.mp4", tmp_path / "fox.mp4")
    assert list(tmp_path.iterdir()) == []


def test_download_http_error(make_client: MakeClient, tmp_path: Path) -> None:
    handler, _ = replay(httpx.Response(404, json={"detail": "expired"}))
    with pytest.raises(NotFoundError, match="expired"):
        make_client(handler).download("http://media.test/v.mp4", tmp_path / "fox.mp4")
    assert list(tmp_path.iterdir()) == []


def test_download_needs_a_video_url(make_client: MakeClient, tmp_path: Path) -> None:
    client = make_client(lambda _: httpx.Response(500))
    with pytest.raises(ValueError, match="no videoUrl"):
        client.download(TaskStatus.from_json(processing(1)), tmp_path / "fox.mp4")


# --- cancel / account / tasks -------------------------------------------------------------


def test_generate_and_wait(make_client: MakeClient) -> None:
    handler, seen = replay({"success": True, "status": "processing", "taskId": "task_1"}, COMPLETED)
    final = make_client(handler).generate_and_wait("a fox", poll_interval=1)
    assert final.status == "completed"
    assert [r.url.path for r in seen] == ["/api/sora-2/generate", "/api/sora-2/check-status"]


def test_cancel(make_client: MakeClient) -> None:
    body = {"success": False, "status": "failed", "errorCode": "TASK_CANCELED", "canceled": True}
    handler, seen = replay(body)
    status = make_client(handler).cancel("task_1")
    assert seen[0].url.path == "/api/sora-2/cancel"
    assert (status.task_id, status.status, status.canceled) == ("task_1", "failed", True)


def test_account(make_client: MakeClient) -> None:
    body = {
        "success": True,
        "keyId": "key_1",
        "name": "ci",
        "credits": 96,
        "rateLimits": {"requestsPerHour": 100},
    }
    handler, seen = replay(body)
    account = make_client(handler).account()
    assert seen[0].method == "GET" and seen[0].url.path == "/api/sora-2/account"
    assert (account.key_id, account.name, account.credits) == ("key_1", "ci", 96)
    assert account.rate_limits == {"requestsPerHour": 100}


def test_tasks_iterates_every_page(make_client: MakeClient) -> None:
    def page(ids: list[str], cursor: str | None) -> dict[str, object]:
        rows = [{**COMPLETED, "taskId": i} for i in ids]
        return {"success": True, "data": rows, "hasMore": cursor is not None, "nextCursor": cursor}

    handler, seen = replay(page(["a", "b"], "c1"), page(["c", "d"], "c2"), page(["e"], None))
    ids = [t.task_id for t in make_client(handler).tasks(limit=2)]
    assert ids == ["a", "b", "c", "d", "e"]
    assert [dict(r.url.params) for r in seen] == [
        {"limit": "2"},
        {"limit": "2", "after": "c1"},
        {"limit": "2", "after": "c2"},
    ]


# --- AsyncClient --------------------------------------------------------------------------


def test_async_client_round_trip(fake_time: FakeTime, tmp_path: Path) -> None:
    handler, seen = replay(
        {"success": True, "status": "processing", "taskId": "task_1"},
        processing(50),
        COMPLETED,
        httpx.Response(200, content=VIDEO),
        error(429, "API_KEY_RATE_LIMIT_EXCEEDED", retry_after=2),
        {"success": True, "data": [COMPLETED], "hasMore": False, "nextCursor": None},
        httpx.Response(200, stream=AsyncBrokenStream()),
    )

    async def main() -> list[str]:
        async with AsyncClient(
            SERVER,
            KEY,
            transport=httpx.MockTransport(handler),
            sleep=fake_time.asleep,
            clock=fake_time.clock,
        ) as client:
            submitted = await client.generate("a fox")
            percents: list[float | None] = []
            final = await client.wait(
                submitted.task_id, on_progress=lambda s: percents.append(s.percent)
            )
            assert percents == [50, None]
            await client.download(final, tmp_path / "fox.mp4")
            ids = [t.task_id async for t in client.tasks()]
            with pytest.raises(APIConnectionError):
                await client.download(final, tmp_path / "broken.mp4")
            return ids

    assert asyncio.run(main()) == ["task_1"]
    assert (tmp_path / "fox.mp4").read_bytes() == VIDEO
    assert list(tmp_path.iterdir()) == [tmp_path / "fox.mp4"]
    assert fake_time.sleeps == [2.0, 2.0]  # one poll interval, one Retry-After
    assert len(seen) == 7
