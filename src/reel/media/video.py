"""H.264 MP4 encoding and decoding with PyAV.

Writers produce browser-friendly files (H.264, yuv420p, ``+faststart``) and never leave a
half-written file at the destination. Readers decode frames for probing and previews; every
PyAV error is translated into :class:`VideoDecodeError` or :class:`VideoEncodeError` here.
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Self, TypeAlias

import av
import numpy as np
import numpy.typing as npt
from av.container import InputContainer, OutputContainer
from av.error import FFmpegError
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from reel.media.audio import Audio, AudioInfo, AudioTrack, audio_info, decode_audio
from reel.media.errors import MediaError

__all__ = [
    "Audio",
    "RGBFrame",
    "VideoDecodeError",
    "VideoEncodeError",
    "VideoError",
    "VideoInfo",
    "VideoWriter",
    "encode_frames",
    "frame_at",
    "frame_count",
    "last_frame",
    "probe",
    "read_audio",
    "sample_frames",
]

_PYAV_ERRORS = (FFmpegError, OSError)

#: An ``height x width x 3`` uint8 RGB image.
RGBFrame: TypeAlias = npt.NDArray[np.uint8]


class VideoError(MediaError):
    """A video could not be written or read. ``message`` is safe to show to users."""


class VideoEncodeError(VideoError):
    """Encoding or writing an MP4 failed."""


class VideoDecodeError(VideoError):
    """A file is not a decodable video."""


@dataclass(frozen=True, slots=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int
    duration_s: float
    #: FFmpeg codec name, e.g. ``"h264"``.
    codec: str
    #: The audio track (codec ``"aac"``, rate, channels, decoded length); ``None``: silent file.
    audio: AudioInfo | None = None

    @property
    def has_audio(self) -> bool:
        return self.audio is not None


class VideoWriter:
    """Encode RGB frames into an H.264 MP4, published atomically at ``path`` on success.

    Use as a context manager. Frames go to a temporary file beside ``path``; a clean exit
    flushes the encoder and renames the file into place, an exception discards it.

    With ``audio_rate`` the file also gets an AAC track (48 kHz, resampled from
    ``audio_rate``): hand samples to :meth:`write_audio` at any point, best before the frames
    they play under, so the two streams are interleaved. On exit the track is cut or padded
    to the video's length exactly. Without ``audio_rate`` the file has no audio track at all.
    """

    def __init__(
        self,
        path: Path,
        *,
        width: int,
        height: int,
        fps: int,
        crf: int = 23,
        preset: str = "veryfast",
        audio_rate: int | None = None,
        audio_channels: int = 2,
    ) -> None:
        if width <= 0 or height <= 0 or width % 2 or height % 2:
            raise ValueError(f"width and height must be positive and even, got {width}x{height}")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {crf}")
        self.path = Path(path)
        self.width = width
        self.height = height
        self.fps = fps
        self._crf = crf
        self._preset = preset
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.part")
        self._container: OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._frames = 0
        self._audio_format = (audio_rate, audio_channels) if audio_rate is not None else None
        self._audio: AudioTrack | None = None

    @property
    def frames_written(self) -> int:
        return self._frames

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        options = {"movflags": "+faststart"}
        if self._audio_format is not None:
            # Interleave strictly by time, however far one stream runs ahead of the other.
            options["max_interleave_delta"] = "0"
        try:
            container = av.open(str(self._tmp), mode="w", format="mp4", options=options)
            stream = container.add_stream("libx264", rate=self.fps)  # pyright: ignore[reportUnknownMemberType]
            stream.width = self.width
            stream.height = self.height
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": str(self._crf), "preset": self._preset}
            if self._audio_format is not None:
                rate, channels = self._audio_format
                self._audio = AudioTrack(container, rate=rate, channels=channels)
        except _PYAV_ERRORS as exc:
            self._discard()
            raise VideoEncodeError("Could not start the video encoder") from exc
        self._container, self._stream = container, stream
        return self

    def write(self, frame: RGBFrame) -> None:
        """Encode one ``height x width x 3`` uint8 RGB frame."""
        container, stream = self._open()
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a {self.height}x{self.width}x3 uint8 frame, "
                f"got {frame.shape} {frame.dtype}"
            )
        video_frame = VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame.pts = self._frames
        video_frame.time_base = Fraction(1, self.fps)
        try:
            _encode(container, stream, video_frame)
            self._frames += 1
            if self._audio is not None:
                self._audio.drain(self._frames / self.fps)
        except _PYAV_ERRORS as exc:
            raise VideoEncodeError("Video encoding failed") from exc

    def write_audio(self, samples: npt.ArrayLike) -> None:
        """Append audio: ``channels x n`` (or ``n`` for mono) floats in ``[-1, 1]``."""
        self._open()
        if self._audio is None:
            raise RuntimeError("this VideoWriter has no audio track (pass audio_rate)")
        try:
            self._audio.feed(samples)
        except _PYAV_ERRORS as exc:
            raise VideoEncodeError("Audio encoding failed") from exc

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._discard()
            return
        container, stream = self._open()
        if self._frames == 0:
            self._discard()
            raise VideoEncodeError("No frames were written")
        if self._audio is not None and not self._audio.fed:
            self._discard()  # never a silent track: a file without sound has no audio at all
            raise VideoEncodeError("No audio was written")
        try:
            if self._audio is not None:
                self._audio.finish(self._frames / self.fps)
            _encode(container, stream, None)
            container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except _PYAV_ERRORS as err:
            self._discard()
            raise VideoEncodeError("Could not finish the video file") from err

    def _open(self) -> tuple[OutputContainer, VideoStream]:
        if self._container is None or self._stream is None:
            raise RuntimeError("VideoWriter is not open; use it as a context manager")
        return self._container, self._stream

    def _discard(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except _PYAV_ERRORS:
                pass  # the file is deleted next; its trailer does not matter
            self._container = None
        self._audio = None
        self._tmp.unlink(missing_ok=True)


def _encode(container: OutputContainer, stream: VideoStream, frame: VideoFrame | None) -> None:
    """Encode ``frame`` (``None`` flushes) and mux the packets; PyAV's stubs leave them untyped."""
    container.mux(stream.encode(frame))  # pyright: ignore[reportUnknownMemberType]


def encode_frames(
    frames: Iterable[RGBFrame],
    path: Path,
    *,
    fps: int,
    crf: int = 23,
    preset: str = "veryfast",
    audio: Audio | None = None,
) -> VideoInfo:
    """Encode ``frames`` (all the same even size), and ``audio`` if given, into an MP4."""
    it = iter(frames)
    first = next(it, None)
    if first is None:
        raise ValueError("no frames to encode")
    height, width = first.shape[:2]
    with VideoWriter(
        path,
        width=width,
        height=height,
        fps=fps,
        crf=crf,
        preset=preset,
        audio_rate=None if audio is None else audio.rate,
        audio_channels=2 if audio is None else audio.channels,
    ) as w:
        if audio is not None:
            w.write_audio(audio.samples)
        w.write(first)
        for frame in it:
            w.write(frame)
    return VideoInfo(
        width=width,
        height=height,
        fps=float(fps),
        frames=w.frames_written,
        duration_s=w.frames_written / fps,
        codec="h264",
        audio=None if audio is None else AudioInfo.written(audio, w.frames_written / fps),
    )


# --- reading ------------------------------------------------------------------------


@contextmanager
def _open_video(
    path: Path,
) -> Generator[tuple[InputContainer, VideoStream], None, None]:
    """Open ``path`` for decoding its first video stream; PyAV errors become ours."""
    try:
        # The MP4/MOV demuxer only: no format guessing from the bytes, so a file an upstream
        # sent can never reach one of FFmpeg's many other demuxers (playlists, images, ...).
        container = av.open(str(path), mode="r", format="mov")
    except _PYAV_ERRORS as exc:
        raise VideoDecodeError("Could not open the video file") from exc
    try:
        if not container.streams.video:
            raise VideoDecodeError("The file has no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            yield container, stream
        except _PYAV_ERRORS as exc:
            raise VideoDecodeError("The video could not be decoded") from exc
    finally:
        container.close()


def _fps(stream: VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return float(rate) if rate else 0.0


def _seconds(frame: VideoFrame) -> float | None:
    if frame.pts is None or frame.time_base is None:
        return None
    return float(frame.pts * frame.time_base)


def probe(path: Path) -> VideoInfo:
    """Decode every frame of ``path`` and describe what was actually there."""
    with _open_video(path) as (container, stream):
        count = 0
        first: float | None = None
        last: float | None = None
        width = height = 0
        for frame in container.decode(stream):
            if count == 0:
                first, width, height = _seconds(frame), frame.width, frame.height
            last = _seconds(frame)
            count += 1
        fps = _fps(stream)
        codec = stream.codec_context.name
        audio = audio_info(container)
    if count == 0:
        raise VideoDecodeError("The video has no frames")
    if fps <= 0:
        raise VideoDecodeError("The video has no frame rate")
    if first is not None and last is not None:
        duration = last - first + 1 / fps
    else:
        duration = count / fps
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        frames=count,
        duration_s=round(duration, 6),
        codec=codec,
        audio=audio,
    )


def read_audio(path: Path) -> Audio | None:
    """The decoded audio track of ``path`` (``None``: the file has none)."""
    with _open_video(path) as (container, _):
        return decode_audio(container)


def frame_count(path: Path) -> int:
    """Number of frames, from the container index or else by counting packets (no decode)."""
    with _open_video(path) as (container, stream):
        if stream.frames > 0:
            return stream.frames
        return sum(1 for packet in container.demux(stream) if packet.size)


def sample_frames(
    path: Path, indices: Sequence[int], *, width: int | None = None
) -> Iterator[RGBFrame]:
    """Yield RGB frames at the given (sorted, possibly repeated) frame indices.

    Decodes sequentially and converts only the chosen frames, scaled to ``width`` (keeping
    the aspect ratio) when given, so memory stays bounded whatever the video's length. If the
    video ends early, the last decoded frame stands in for the missing indices.
    """
    if list(indices) != sorted(indices) or (indices and indices[0] < 0):
        raise ValueError("indices must be sorted and non-negative")
    if not indices:
        return
    pending = list(indices)
    last: VideoFrame | None = None
    with _open_video(path) as (container, stream):
        for number, frame in enumerate(container.decode(stream)):
            last = frame
            while pending and pending[0] == number:
                pending.pop(0)
                yield _to_rgb(frame, width)
            if not pending:
                return
        if last is None:
            raise VideoDecodeError("The video has no frames")
        for _ in pending:
            yield _to_rgb(last, width)


def _to_rgb(frame: VideoFrame, width: int | None = None) -> RGBFrame:
    """Convert (and optionally downscale, keeping the aspect ratio) to an RGB array."""
    if width is not None and width != frame.width:
        height = max(1, round(frame.height * width / frame.width))
        frame = frame.reformat(width=width, height=height, format="rgb24")
    # rgb24 always gives uint8; astype(copy=False) states it for the type checker for free.
    return frame.to_ndarray(format="rgb24").astype(np.uint8, copy=False)


def frame_at(path: Path, t_seconds: float) -> RGBFrame:
    """The RGB frame on screen at ``t_seconds`` (the last frame if past the end)."""
    if not t_seconds >= 0:
        raise ValueError(f"t_seconds must be >= 0, got {t_seconds}")
    with _open_video(path) as (container, stream):
        return _to_rgb(_frame_at(container, stream, t_seconds))


def last_frame(path: Path) -> RGBFrame:
    """The final RGB frame of ``path`` (used to chain segments and for remixes)."""
    with _open_video(path) as (container, stream):
        end = math.inf
        if stream.duration and stream.time_base is not None:
            end = float(stream.duration * stream.time_base)
        return _to_rgb(_frame_at(container, stream, end))


def _frame_at(container: InputContainer, stream: VideoStream, t: float) -> VideoFrame:
    """Seek to the keyframe before ``t`` and decode forward; fall back to a full decode."""
    if math.isfinite(t) and stream.time_base is not None:
        found = _decode_until(container, stream, t, seek=True)
        if found is not None:
            return found
        container.seek(0, stream=stream, backward=True)
    found = _decode_until(container, stream, t, seek=False)
    if found is None:
        raise VideoDecodeError("The video has no frames")
    return found


def _decode_until(
    container: InputContainer,
    stream: VideoStream,
    t: float,
    *,
    seek: bool,
) -> VideoFrame | None:
    """Latest frame starting at or before ``t``; ``None`` if a seek overshot it."""
    tb = stream.time_base
    start = float(stream.start_time * tb) if stream.start_time and tb is not None else 0.0
    eps = 1e-3 / max(_fps(stream), 1.0)
    if seek and tb is not None:
        container.seek(int((t + start) / tb), stream=stream, backward=True, any_frame=False)
    chosen: VideoFrame | None = None
    for frame in container.decode(stream):
        at = _seconds(frame)
        if at is not None and at - start > t + eps:
            if chosen is None:
                return None if seek else frame
            return chosen
        chosen = frame
    return chosen
