"""The task state machine, as data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from reel.types import TaskStatus as S

ALLOWED: Final[Mapping[S, frozenset[S]]] = {
    S.QUEUED: frozenset({S.RUNNING, S.FAILED, S.CANCELED}),
    # back to QUEUED when a lease expires or a draining worker hands it back
    S.RUNNING: frozenset({S.COMPLETED, S.FAILED, S.CANCELED, S.QUEUED}),
    S.COMPLETED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
}


def can_transition(src: S, dst: S) -> bool:
    return dst in ALLOWED[src]
