"""Python client for reel, or any server speaking the Sora 2 video API contract.

Shippable alone: it imports nothing else from ``reel`` and needs only httpx. ::

    from reel.client import Client

    with Client("http://127.0.0.1:8000", "sk-...") as reel:
        task = reel.generate("a red fox in the snow", tier="sora2", duration="10")
        done = reel.wait(task.task_id, on_progress=lambda s: print(s.stage, s.percent))
        reel.download(done, "fox.mp4")
"""

from ._async_client import AsyncClient
from ._base import DEFAULT_SERVER
from ._client import Client
from ._errors import (
    ERROR_CODES,
    ActiveTaskLimitError,
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    GenerationFailedError,
    ImageFetchFailedError,
    ImageRequiredError,
    ImageUrlsRequiredError,
    InsufficientCreditsError,
    InternalServerError,
    InvalidParameterError,
    LoginRequiredError,
    NotFoundError,
    PaymentRequiredError,
    PermissionDeniedError,
    PromptRequiredError,
    RateLimitError,
    ReelAPIError,
    ReelClientError,
    ServiceBusyError,
    TaskCanceledError,
    TaskIdRequiredError,
    TaskNotFoundError,
    WaitTimeoutError,
)
from ._models import Account, Aspect, Duration, Mode, State, Submitted, TaskStatus, Tier

__all__ = [
    "DEFAULT_SERVER",
    "ERROR_CODES",
    "APIConnectionError",
    "APITimeoutError",
    "Account",
    "ActiveTaskLimitError",
    "Aspect",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "Duration",
    "GenerationFailedError",
    "ImageFetchFailedError",
    "ImageRequiredError",
    "ImageUrlsRequiredError",
    "InsufficientCreditsError",
    "InternalServerError",
    "InvalidParameterError",
    "LoginRequiredError",
    "Mode",
    "NotFoundError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "PromptRequiredError",
    "RateLimitError",
    "ReelAPIError",
    "ReelClientError",
    "ServiceBusyError",
    "State",
    "Submitted",
    "TaskCanceledError",
    "TaskIdRequiredError",
    "TaskNotFoundError",
    "TaskStatus",
    "Tier",
    "WaitTimeoutError",
]
