"""Errors raised by ``reel.media``.

Each carries ``message``: one short sentence that is safe to show to the user who sent the
URL or the file. Details for operators travel on ``__cause__`` (``raise ... from exc``).
"""

from __future__ import annotations


class MediaError(Exception):
    """The media could not be used."""

    default_message = "The media could not be used."

    def __init__(self, message: str | None = None) -> None:
        self.message: str = message if message is not None else self.default_message
        super().__init__(self.message)


class ImageFetchError(MediaError):
    """A URL was refused, or fetching it failed: unreachable, too big, too slow, bad status."""

    default_message = "The file could not be downloaded."


class ImageDecodeError(MediaError):
    """The bytes are not a usable image: unknown format, too many pixels, truncated or corrupt."""

    default_message = "The file is not an image that can be read."
