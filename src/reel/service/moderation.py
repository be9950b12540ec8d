"""The content policy: a blocklist and an operator's moderation endpoint, before and after.

Before generation the prompt is checked against ``REEL_MODERATION_BLOCKLIST`` (whole words and
phrases, case-insensitive, whitespace-normalized) and ``REEL_MODERATION_URL``; after it,
frames sampled from the video can go to ``REEL_MODERATION_OUTPUT_URL``. Both endpoints speak
OpenAI's ``POST /v1/moderations`` and are reached only through :mod:`reel.net`'s SSRF guard.
Everything is off until configured.

A :class:`Verdict` is what the operator sees on the task (``Task.extra["moderation"]``, never
shown to users): which checks ran and why a request was refused, never the classifier's
whole answer. Users only ever get ``CONTENT_POLICY_VIOLATION`` and a fixed message.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

from reel.config import Settings
from reel.net import FetchError, FetchPolicy, post_bytes
from reel.service.errors import ContentPolicyViolation, ModerationUnavailable

log = logging.getLogger("reel.moderation")

#: ``Task.extra`` key of the decisions (hidden from users, kept out of retries and remixes).
MODERATION: Final = "moderation"

Stage = Literal["prompt", "output"]


@dataclass(frozen=True, slots=True)
class Verdict:
    stage: Stage
    allowed: bool
    #: The checks that ran: ``blocklist``, ``endpoint``.
    checks: tuple[str, ...]
    #: Why it was refused (``blocklist`` | ``endpoint``) or let through unchecked
    #: (``endpoint_down``); ``None`` for a plain pass.
    reason: str | None = None
    #: The endpoint's flagged categories (operator only).
    categories: tuple[str, ...] = ()

    def record(self) -> dict[str, object]:
        entry: dict[str, object] = {
            "decision": "allowed" if self.allowed else "refused",
            "checks": list(self.checks),
        }
        if self.reason:
            entry["reason"] = self.reason
        if self.categories:
            entry["categories"] = list(self.categories)
        return entry


class _Down(Exception):
    """The endpoint could not give an answer."""


# --- before generation -----------------------------------------------------------------------


def screen_prompt(settings: Settings, prompt: str) -> Verdict | None:
    """Check a prompt; ``None`` when moderation is off.

    Raises :class:`ContentPolicyViolation` when refused, :class:`ModerationUnavailable` when a
    check could not run and ``REEL_MODERATION_WHEN_DOWN=refuse``.
    """
    checks: list[str] = []
    if settings.moderation_blocklist is not None:
        checks.append("blocklist")
        try:
            hit = blocked(prompt, settings.moderation_blocklist)
        except OSError as exc:
            log.error("moderation blocklist %s unreadable: %s", settings.moderation_blocklist, exc)
            return _unchecked(settings, "prompt", checks)
        if hit:
            log.info("prompt refused by the blocklist")
            raise ContentPolicyViolation()
    if settings.moderation_url:
        checks.append("endpoint")
        try:
            flagged = ask(settings, settings.moderation_url, prompt)
        except _Down as exc:
            log.warning("moderation endpoint unavailable: %s", exc)
            return _unchecked(settings, "prompt", checks)
        if flagged is not None:
            log.info("prompt refused by the moderation endpoint (%s)", ", ".join(flagged))
            raise ContentPolicyViolation()
    if not checks:
        return None
    return Verdict("prompt", True, tuple(checks))


def _unchecked(settings: Settings, stage: Stage, checks: list[str]) -> Verdict:
    if settings.moderation_when_down == "refuse":
        raise ModerationUnavailable()
    return Verdict(stage, True, tuple(checks), reason="endpoint_down")


def blocked(text: str, blocklist: Path) -> bool:
    """Whether ``text`` contains a word or phrase of ``blocklist`` (whole words only)."""
    stat = blocklist.stat()
    pattern = _compile(str(blocklist), stat.st_mtime_ns, stat.st_size)
    return pattern is not None and pattern.search(_normalize(text)) is not None


def _normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@lru_cache(maxsize=8)
def _compile(path: str, _mtime_ns: int, _size: int) -> re.Pattern[str] | None:
    """The blocklist as one pattern; cached until the file changes."""
    phrases: set[str] = set()
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        phrase = "" if line.lstrip().startswith("#") else _normalize(line)
        if phrase:
            phrases.add(r"\s+".join(re.escape(word) for word in phrase.split()))
    if not phrases:
        return None
    longest_first = sorted(phrases, key=len, reverse=True)
    return re.compile(r"(?<!\w)(?:" + "|".join(longest_first) + r")(?!\w)")


# --- after generation ------------------------------------------------------------------------


def screen_frames(settings: Settings, frames: Sequence[bytes]) -> Verdict | None:
    """Check JPEG frames of a finished video; ``None`` when output moderation is off.

    Returns a refusing verdict instead of raising (the worker fails the task with it).
    Raises :class:`ModerationUnavailable` when the endpoint is down and the policy refuses.
    """
    url = settings.moderation_output_url
    if not url:
        return None
    for frame in frames:
        image = "data:image/jpeg;base64," + base64.b64encode(frame).decode("ascii")
        item = {"type": "image_url", "image_url": {"url": image}}
        try:
            flagged = ask(settings, url, [item])
        except _Down as exc:
            log.warning("output moderation endpoint unavailable: %s", exc)
            return _unchecked(settings, "output", ["endpoint"])
        if flagged is not None:
            return Verdict("output", False, ("endpoint",), "endpoint", tuple(flagged))
    return Verdict("output", True, ("endpoint",))


# --- the endpoint ----------------------------------------------------------------------------


def policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(
        allow_hosts=frozenset(settings.moderation_allow_hosts),
        max_bytes=1024 * 1024,
        timeout=settings.moderation_timeout,
        max_redirects=0,
    )


def ask(
    settings: Settings, url: str, content: str | list[Mapping[str, object]]
) -> list[str] | None:
    """POST one ``/v1/moderations`` request; the flagged categories, or ``None`` when clean.

    Raises :class:`_Down` when there is no usable answer (unreachable, timeout, non-2xx,
    not the documented shape).
    """
    body: dict[str, object] = {"input": content}
    if settings.moderation_model:
        body["model"] = settings.moderation_model
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if settings.moderation_api_key is not None:
        headers["Authorization"] = f"Bearer {settings.moderation_api_key.get_secret_value()}"
    try:
        answer = post_bytes(url, json.dumps(body).encode(), policy(settings), headers=headers)
    except FetchError as exc:
        raise _Down(exc.message) from exc
    if not answer.is_success:
        raise _Down(f"status {answer.status_code}")
    try:
        results = json.loads(answer.body)["results"]
        flags = [(bool(r["flagged"]), r.get("categories") or {}) for r in results]
    except (ValueError, KeyError, TypeError) as exc:
        raise _Down("the answer is not a moderation result") from exc
    if not flags:
        raise _Down("the answer has no results")
    if not any(flagged for flagged, _ in flags):
        return None
    categories = sorted(
        {
            str(name)
            for flagged, cats in flags
            if flagged and isinstance(cats, dict)
            for name, on in cats.items()
            if on is True
        }
    )
    return categories or ["flagged"]
