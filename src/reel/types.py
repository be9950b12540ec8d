"""Shared identifiers and closed sets used across layers."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

TaskId = NewType("TaskId", str)
KeyId = NewType("KeyId", str)
Credits = NewType("Credits", int)


class Tier(StrEnum):
    """The contract's model tiers."""

    SORA2 = "sora2"
    PRO_STANDARD = "sora2-pro-standard"
    PRO_HIGH = "sora2-pro-high"


class Mode(StrEnum):
    TEXT_TO_VIDEO = "textToVideo"
    IMAGE_TO_VIDEO = "imageToVideo"


class Aspect(StrEnum):
    PORTRAIT = "portrait"
    LANDSCAPE = "landscape"


class TaskStatus(StrEnum):
    #: accepted and charged, waiting for a worker
    QUEUED = "queued"
    #: claimed by a worker holding a lease
    RUNNING = "running"
    #: video stored; final
    COMPLETED = "completed"
    #: failed and refunded; final
    FAILED = "failed"
    #: canceled by its owner and refunded; final
    CANCELED = "canceled"


class Stage(StrEnum):
    """Progress stages reported while a task runs (the seed's `progress` string)."""

    QUEUED = "queued"
    LOADING = "loading"
    GENERATING = "generating"
    DECODING = "decoding"
    ENCODING = "encoding"
    STORING = "storing"


FINAL_STATUSES = frozenset({TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELED})
