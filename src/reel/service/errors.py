"""Domain errors. Each carries the contract's ``errorCode``; the docstring is the default message.

``reel.api.errors`` is the one place that turns these into HTTP statuses and bodies.
"""

from __future__ import annotations

from typing import ClassVar


class ReelError(Exception):
    """Internal server error"""

    code: ClassVar[str] = "INTERNAL_ERROR"

    def __init__(self, message: str | None = None, **extra: object) -> None:
        self.message = message or (type(self).__doc__ or self.code).strip()
        #: Extra fields for the error body (``requiredCredits``, ``param``…).
        self.extra = extra
        #: Extra response headers (rate-limit state).
        self.headers: dict[str, str] = {}
        super().__init__(self.message)


class LoginRequired(ReelError):
    """Authentication required: send `Authorization: Bearer <API key>`"""

    code = "LOGIN_REQUIRED"


class RateLimited(ReelError):
    """Rate limit exceeded"""

    code = "API_KEY_RATE_LIMIT_EXCEEDED"

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: int,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(message, **extra)
        self.retry_after = retry_after
        self.headers = {**(headers or {}), "Retry-After": str(retry_after)}


class QuotaExceeded(RateLimited):
    """The account's quota for this period is used up"""

    code = "QUOTA_EXCEEDED"


class ActiveTaskLimit(ReelError):
    """Too many unfinished tasks for this API key; wait for some to finish"""

    code = "ACTIVE_TASK_LIMIT_EXCEEDED"


class InsufficientCredits(ReelError):
    """Insufficient credits"""

    code = "INSUFFICIENT_CREDITS"


class PromptRequired(ReelError):
    """Missing prompt"""

    code = "PROMPT_REQUIRED"


class ImageRequired(ReelError):
    """Image required for imageToVideo mode: pass imageUrls"""

    code = "IMAGE_REQUIRED"


class ImageUrlsRequired(ReelError):
    """API calls require imageUrls (public http(s) URLs); base64 and data: images are refused"""

    code = "IMAGE_URLS_REQUIRED"


class ImageFetchFailed(ReelError):
    """The image URL could not be used"""

    code = "IMAGE_FETCH_FAILED"


class InvalidParameter(ReelError):
    """Invalid parameter"""

    code = "INVALID_PARAMETER"


class BodyTooLarge(InvalidParameter):
    """The request body is larger than this route accepts"""


class GenerationFailed(ReelError):
    """Video generation failed"""

    code = "GENERATION_FAILED"


class TaskIdRequired(ReelError):
    """Missing task ID"""

    code = "TASK_ID_REQUIRED"


class TaskNotFound(ReelError):
    """Task not found or not owned by user"""

    code = "TASK_NOT_FOUND"


class TaskNotCancelable(ReelError):
    """The task has already finished and cannot be canceled"""

    code = "TASK_NOT_CANCELABLE"


class TaskNotRetryable(ReelError):
    """Only a failed task can be retried, once at a time, for a live key"""

    code = "TASK_NOT_RETRYABLE"


class ServiceBusy(ReelError):
    """The service is busy; retry shortly"""

    code = "SERVICE_BUSY"


class NotFound(ReelError):
    """Not found"""

    code = "NOT_FOUND"


class Expired(ReelError):
    """This link has expired"""

    code = "LINK_EXPIRED"


class InternalError(ReelError):
    """Internal server error"""

    code = "INTERNAL_ERROR"


# --- integrations: idempotency, videos ---------------------------------------------------------


class IdempotencyKeyReused(ReelError):
    """This Idempotency-Key was already used with a different request body"""

    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(ReelError):
    """A request with this Idempotency-Key is still being processed; retry shortly"""

    code = "IDEMPOTENCY_REQUEST_IN_PROGRESS"


class VideoNotReady(ReelError):
    """The video has not completed, so it has no content to download"""

    code = "VIDEO_NOT_READY"


class MediaExpired(ReelError):
    """The video's files were removed after its retention period"""

    code = "MEDIA_EXPIRED"


# --- moderation -------------------------------------------------------------------------------


class ContentPolicyViolation(ReelError):
    """This request was refused by the content policy"""

    code = "CONTENT_POLICY_VIOLATION"


class ModerationUnavailable(ServiceBusy):
    """The content check is unavailable; retry shortly"""
