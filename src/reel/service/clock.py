"""Wall-clock time in one place, so tests and services agree on the unit (epoch seconds)."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
now: Clock = time.time
