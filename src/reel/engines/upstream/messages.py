"""What users read when an upstream task fails. Upstream details stay in operator logs."""

from __future__ import annotations

from typing import Final

NO_UPSTREAM: Final = "No video provider could take this task right now"
MISCONFIGURED: Final = "This model is not configured correctly"
NOT_CONFIGURED: Final = "This model's video providers are not configured for this request"
JOB_FAILED: Final = "The video provider could not generate this video"
TIMED_OUT: Final = "The video provider did not finish in time"
LOST: Final = "The video provider stopped answering"
UNCERTAIN: Final = (
    "The video provider did not confirm the request; it was not retried elsewhere "
    "so that it cannot run twice"
)
NO_VIDEO: Final = "The video provider finished without a video"
DOWNLOAD: Final = "The finished video could not be downloaded from the video provider"
BAD_VIDEO: Final = "The video provider returned a file that is not a playable video"
