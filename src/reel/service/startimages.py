"""Start images: downloaded and decoded in small pools of their own, never more than a few per
API key at once, with a per-key budget of failed downloads.

A create with an image URL used to download and decode in the request's own thread: forty
requests pointing at a host that never answers held every thread the API has, and decoding a
small file of many pixels took gigabytes. Now:

- downloads run in a pool of ``REEL_IMAGE_FETCH_CONCURRENCY`` threads and decodes in one of
  ``REEL_IMAGE_DECODE_CONCURRENCY``; when a pool is full the request is refused at once
  (``503 SERVICE_BUSY``, ``Retry-After``) instead of queueing, so no more request threads
  than that ever wait on images, and check-status and the rest keep their threads;
- one key has at most ``REEL_IMAGE_INFLIGHT_PER_KEY`` start images in progress (download and
  decode); more answer ``429`` at once;
- each failed download counts against the key's ``REEL_IMAGE_FETCH_FAILURES`` budget (per API
  process); while it is spent, image URLs from that key are refused without a download.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from functools import lru_cache
from typing import TypeVar

from limits import parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from reel.config import Settings
from reel.media.errors import ImageFetchError
from reel.media.images import Image, decode_image, download_image
from reel.net import FetchPolicy
from reel.service.clock import now
from reel.service.errors import RateLimited, ServiceBusy

T = TypeVar("T")


class _Pool:
    """A thread pool that refuses work when all its threads are busy (no queue)."""

    def __init__(self, name: str, workers: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._free = threading.BoundedSemaphore(workers)

    def run(self, fn: Callable[[], T], busy: str) -> T:
        if not self._free.acquire(blocking=False):
            raise ServiceBusy(busy)  # answered with Retry-After
        try:
            future: Future[T] = self._executor.submit(fn)
        except BaseException:
            self._free.release()
            raise
        future.add_done_callback(lambda _: self._free.release())
        return future.result()


class StartImages:
    """The pools and per-key counters of one API process."""

    def __init__(
        self, *, fetch_workers: int, decode_workers: int, per_key: int, failures: str
    ) -> None:
        self._fetch = _Pool("reel-image-fetch", fetch_workers)
        self._decode = _Pool("reel-image-decode", decode_workers)
        self._per_key = per_key
        self._lock = threading.Lock()
        self._inflight: Counter[str] = Counter()
        self._failures = parse(failures)
        self._failed = MovingWindowRateLimiter(MemoryStorage())

    def from_upload(
        self, key_id: str, data: bytes, *, max_pixels: int, fit: tuple[int, int]
    ) -> Image:
        with self._slot(key_id):
            return self._decoded(data, max_pixels, fit)

    def from_url(
        self, key_id: str, url: str, policy: FetchPolicy, *, max_pixels: int, fit: tuple[int, int]
    ) -> Image:
        if not self._failed.test(self._failures, "image-fetch-failed", key_id):
            reset = self._failed.get_window_stats(self._failures, "image-fetch-failed", key_id)
            raise RateLimited(
                "Too many image URLs of this API key failed to download; retry later",
                retry_after=max(1, math.ceil(reset.reset_time - now())),
                param="imageUrls",
            )
        with self._slot(key_id):
            try:
                data = self._fetch.run(
                    lambda: download_image(url, policy),
                    "Too many image downloads in progress; retry shortly",
                )
            except ImageFetchError:
                self._failed.hit(self._failures, "image-fetch-failed", key_id)
                raise
            return self._decoded(data, max_pixels, fit)

    def decode_video(self, key_id: str, work: Callable[[], T]) -> T:
        """Run ``work`` (decoding an uploaded video) in the decode pool, in one of the key's
        slots: uploaded videos wait on the same bounded threads as images."""
        with self._slot(key_id):
            return self._decode.run(work, "Too many uploads being decoded; retry shortly")

    def _decoded(self, data: bytes, max_pixels: int, fit: tuple[int, int]) -> Image:
        return self._decode.run(
            lambda: decode_image(data, max_pixels=max_pixels, fit=fit),
            "Too many images being decoded; retry shortly",
        )

    @contextmanager
    def _slot(self, key_id: str) -> Iterator[None]:
        with self._lock:
            if self._inflight[key_id] >= self._per_key:
                raise RateLimited(
                    f"This API key already has {self._per_key} start images in progress",
                    retry_after=1,
                )
            self._inflight[key_id] += 1
        try:
            yield
        finally:
            with self._lock:
                self._inflight[key_id] -= 1
                if not self._inflight[key_id]:
                    del self._inflight[key_id]


def start_images(settings: Settings) -> StartImages:
    """This process's pools for these settings (one set per distinct configuration)."""
    return _shared(
        settings.image_fetch_concurrency,
        settings.image_decode_concurrency,
        settings.image_inflight_per_key,
        settings.image_fetch_failures,
    )


@lru_cache(maxsize=8)
def _shared(fetch: int, decode: int, per_key: int, failures: str) -> StartImages:
    return StartImages(
        fetch_workers=fetch, decode_workers=decode, per_key=per_key, failures=failures
    )
