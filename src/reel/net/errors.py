"""The one error of outbound HTTP.

``message`` is one short sentence that is safe to show to the user who sent the URL; details
for operators travel on ``__cause__`` (``raise ... from exc``).
"""

from __future__ import annotations


class FetchError(Exception):
    """A URL was refused, or the request failed: unreachable, too big, too slow, bad status."""

    default_message = "The file could not be downloaded."

    def __init__(self, message: str | None = None, *, status: int | None = None) -> None:
        self.message: str = message if message is not None else self.default_message
        #: The HTTP status the server answered with, when a bad status was the failure.
        self.status = status
        super().__init__(self.message)
