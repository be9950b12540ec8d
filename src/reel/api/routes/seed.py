"""`/api/sora-2/*`: the Sora 2 contract, exactly, plus documented extensions."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from reel.api import idempotency
from reel.api.deps import (
    CreateKey,
    JsonBody,
    LimiterDep,
    ServicesDep,
    StatusKey,
    bearer_token,
    count_request,
    json_body,
)
from reel.api.schemas.seed import (
    AccountResponse,
    CheckStatusRequest,
    ErrorBody,
    GenerateRequest,
    GenerateResponse,
    PricingResponse,
    QuotaState,
    RateLimitState,
    StatusResponse,
    TaskPage,
    TierPrice,
    parse_generate,
    parse_task_id,
    present,
)
from reel.service import accounts, pricing, status, tasks, usage, webhooks
from reel.service import usage_export as usage_statement
from reel.service.clock import now
from reel.service.errors import (
    InvalidParameter,
    LoginRequired,
    ReelError,
    TaskIdRequired,
    TaskNotFound,
)
from reel.service.ratelimit import Bucket
from reel.types import Aspect, Mode, TaskStatus, Tier

router = APIRouter(prefix="/api/sora-2", tags=["Sora 2 contract"])


def _errors(*statuses: int) -> dict[int | str, dict[str, object]]:
    text = {
        400: "Invalid request",
        401: "Missing, invalid or revoked API key",
        402: "Not enough credits",
        404: "Task not found or not owned by this key",
        409: "Conflict: task already finished, or an Idempotency-Key request still in flight",
        422: "This Idempotency-Key was used with a different body",
        429: "Rate limit or active-task limit exceeded",
        500: "Internal error",
        503: "Database busy; retry",
    }
    return {s: {"model": ErrorBody, "description": text[s]} for s in statuses}


def _body_doc(model: type[GenerateRequest] | type[CheckStatusRequest]) -> dict[str, object]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


@router.post(
    "/generate",
    response_model=GenerateResponse,
    responses=_errors(400, 401, 402, 409, 422, 429, 500, 503),
    openapi_extra=_body_doc(GenerateRequest),
    summary="Generate a video",
)
def generate(
    key: CreateKey, body: JsonBody, services: ServicesDep, request: Request, response: Response
) -> dict[str, object]:
    s = services.settings
    cmd = parse_generate(body, max_prompt=s.max_prompt_length, max_images=s.max_image_urls)
    if body.get("callBackUrl") is not None:
        url = webhooks.check_target(
            body["callBackUrl"], services.webhook_policy, param="callBackUrl"
        )
        cmd = dataclasses.replace(cmd, extra={**cmd.extra, "callBackUrl": url})
    return idempotency.run(
        request,
        response,
        services,
        key,
        route="POST /api/sora-2/generate",
        canonical=body,
        create=lambda hook: tasks.create(services, key, cmd, on_insert=hook),
        render=lambda task: GenerateResponse(
            taskId=task.id, message="Video generation in progress"
        ).model_dump(mode="json"),
    )


@router.post(
    "/check-status",
    response_model=StatusResponse,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 404, 429, 500, 503),
    openapi_extra=_body_doc(CheckStatusRequest),
    summary="Check task status",
)
async def check_status(request: Request, services: ServicesDep, limiter: LimiterDep) -> Response:
    # The polling hot path: no thread-pool hop (one short indexed read runs on the event loop),
    # one statement for key + task + queue place, the response serialised once. Errors keep the
    # order of the other routes: 401, then 429, then 400, then 404.
    token = bearer_token(request)
    if token is None:
        raise LoginRequired()
    task_id: str | None = None
    invalid: ReelError | None = None
    try:
        task_id = parse_task_id(await json_body(request, services))
    except (InvalidParameter, TaskIdRequired) as exc:
        invalid = exc
    found = status.poll(services.db, token, task_id)
    headers = count_request(limiter, Bucket.STATUS, found.key_id)
    if invalid is not None:
        raise invalid
    if found.task is None:
        raise TaskNotFound()
    body = present(
        found.task, services=services, request=request, queue_position=found.queue_position
    )
    return Response(
        body.model_dump_json(exclude_none=True), media_type="application/json", headers=headers
    )


@router.post(
    "/cancel",
    response_model=StatusResponse,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 404, 409, 429, 500, 503),
    openapi_extra=_body_doc(CheckStatusRequest),
    summary="Cancel a task (extension)",
)
def cancel(
    key: StatusKey, body: JsonBody, services: ServicesDep, request: Request
) -> StatusResponse:
    task = tasks.cancel(services, key, parse_task_id(body))
    return present(task, services=services, request=request)


@router.get(
    "/tasks",
    response_model=TaskPage,
    response_model_exclude_none=True,
    responses=_errors(400, 401, 404, 429, 500, 503),
    summary="List this key's tasks, newest first (extension)",
)
def list_tasks(
    key: StatusKey,
    services: ServicesDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    after: Annotated[str | None, Query(max_length=100)] = None,
) -> TaskPage:
    with services.db.read() as session:
        rows = tasks.list_for_key(session, key, limit=limit + 1, after=after)
        page = rows[:limit]
        data = [
            present(
                t,
                services=services,
                request=request,
                queue_position=tasks.queue_position(session, t),
                with_prompt=True,
            )
            for t in page
        ]
    return TaskPage(
        data=data, hasMore=len(rows) > limit, nextCursor=page[-1].id if len(rows) > limit else None
    )


@router.get(
    "/account",
    response_model=AccountResponse,
    responses=_errors(401, 429, 500, 503),
    summary="Balance, limits, quotas and usage of this key's account (extension)",
)
def account(key: StatusKey, services: ServicesDep, limiter: LimiterDep) -> AccountResponse:
    with services.db.read() as session:
        used = usage.account_usage(session, key.account_id)
        owner = accounts.get(session, key.account_id)
        period = accounts.period_usage(session, key.account_id)
    caps = accounts.limits_of(owner)
    at = now()
    span = period.periods
    quotas = {
        name: QuotaState(limit=cap, used=spent, resetSeconds=max(0, math.ceil(turns - at)))
        for name, cap, spent, turns in (
            ("dailyCredits", caps.daily_credits, period.day_credits, span.next_day),
            ("monthlyCredits", caps.monthly_credits, period.month_credits, span.next_month),
            ("dailyVideos", caps.daily_videos, period.day_videos, span.next_day),
        )
    }
    limits = {}
    for bucket in Bucket:
        q = limiter.peek(bucket, key.id)
        limits[bucket.value] = RateLimitState(
            limit=q.limit, remaining=q.remaining, resetSeconds=q.reset_in
        )
    return AccountResponse(
        keyId=key.id,
        name=key.name,
        accountId=owner.id,
        accountName=owner.name,
        credits=owner.balance,
        activeTasks=used.active,
        maxActiveTasks=services.settings.max_active_tasks_per_key,
        rateLimits=limits,
        quotas=quotas,
        accountCreatesPerHour=caps.creates_per_hour,
        usage={
            "tasks": sum(used.by_status.values()),
            **{s.value: used.by_status.get(s, 0) for s in TaskStatus},
            "creditsSpent": used.credits_spent,
        },
    )


@router.get(
    "/usage",
    responses={
        **_errors(400, 401, 429, 500, 503),
        200: {"content": {"text/csv": {}, "application/json": {}}},
    },
    summary="This key's account's tasks in a time range, with credits kept (extension)",
)
def usage_export(
    key: StatusKey,
    services: ServicesDep,
    since: Annotated[str | None, Query(alias="from")] = None,
    until: Annotated[str | None, Query(alias="to")] = None,
    fmt: Annotated[str, Query(alias="format")] = "csv",
) -> StreamingResponse:
    if fmt not in usage_statement.FORMATS:
        raise InvalidParameter("format must be csv or json", param="format")
    span = usage_statement.parse_range(since, until, at=now())
    media = "text/csv; charset=utf-8" if fmt == "csv" else "application/json"
    name = f"usage-{key.account_id}.{fmt}"
    return StreamingResponse(
        usage_statement.stream(services.db, key.account_id, span, fmt),
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/pricing",
    response_model=PricingResponse,
    responses=_errors(500),
    openapi_extra={"security": []},
    summary="Credits per tier and duration, and what each tier delivers (extension; no key)",
)
def pricing_table(services: ServicesDep) -> PricingResponse:
    tiers = []
    for tier in Tier:
        engine = services.catalog.model_for(tier).engine
        sizes = {a.value: "{}x{}".format(*pricing.frame_size(tier, a)) for a in Aspect}
        tiers.append(
            TierPrice(
                modelTier=tier.value,
                credits={str(d): pricing.price(tier, d) for d in pricing.DURATIONS},
                sizes=sizes,
                engine=engine,
                sandbox=engine == "sandbox",
            )
        )
    return PricingResponse(
        modes=[m.value for m in Mode],
        aspectRatios=[a.value for a in Aspect],
        durations=[str(d) for d in pricing.DURATIONS],
        defaultDuration=str(pricing.DEFAULT_DURATION),
        tiers=tiers,
    )
