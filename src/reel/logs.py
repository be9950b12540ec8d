"""Process-wide logging setup (one line per record, to stderr)."""

from __future__ import annotations

import logging
from typing import Final


def configure_logging(level: str = "info") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s[%(process)d]: %(message)s",
        force=True,
    )


#: Paths whose links carry a signature in the query string (media links, upstream callbacks).
SIGNED_PATHS: Final = ("/media/", "/hooks/")


class RedactSignedQueries(logging.Filter):
    """Drops the query string of signed links from access-log records (uvicorn's
    ``client, method, path, version, status`` arguments): no logged line holds a usable
    link."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, str) for a in record.args):
            record.args = tuple(_redact(a) if isinstance(a, str) else a for a in record.args)
        return True


def _redact(value: str) -> str:
    if value.startswith(SIGNED_PATHS) and "?" in value:
        return value.split("?", 1)[0]
    return value
