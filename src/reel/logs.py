"""Process-wide logging setup (one line per record, to stderr)."""

from __future__ import annotations

import logging


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s",
        force=True,
    )
