"""The audio track of Reel's MP4s: AAC at 48 kHz, as long as the video to the frame.

:class:`AudioTrack` is driven by :class:`reel.media.video.VideoWriter`: the samples an engine
hands over (any rate, mono or stereo, floats in ``[-1, 1]``) are resampled to 48 kHz with
PyAV's resampler and encoded in step with the video frames, so the muxer interleaves the two.
When the video ends the track is cut or padded to exactly the video's length.

Reading helpers work on a container that :mod:`reel.media.video` opened (it owns the
translation of PyAV errors). PyAV errors raised here propagate to that caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer

__all__ = [
    "AUDIO_RATE",
    "Audio",
    "AudioInfo",
    "AudioTrack",
    "Samples",
    "audio_info",
    "decode_audio",
]

#: The sample rate of every audio track Reel writes.
AUDIO_RATE: Final = 48_000
#: AAC-LC encodes 1024 samples per frame.
_AAC_FRAME: Final = 1024
_BIT_RATE: Final = 128_000
_LAYOUTS: Final = {1: "mono", 2: "stereo"}

#: ``channels x samples`` float32 in ``[-1, 1]``.
Samples: TypeAlias = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class Audio:
    """A waveform: ``samples`` is ``channels x n`` float32 at ``rate`` Hz."""

    samples: Samples
    rate: int
    #: Where the first sample plays, in seconds from the start of the file (decoded tracks).
    start_s: float = 0.0

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration_s(self) -> float:
        return self.samples.shape[1] / self.rate

    @property
    def peak(self) -> float:
        return float(np.abs(self.samples).max()) if self.samples.size else 0.0


@dataclass(frozen=True, slots=True)
class AudioInfo:
    codec: str
    rate: int
    channels: int
    duration_s: float
    start_s: float

    @classmethod
    def written(cls, audio: Audio, duration_s: float) -> AudioInfo:
        """What :class:`AudioTrack` writes for ``audio`` under a video of ``duration_s``."""
        return cls("aac", AUDIO_RATE, audio.channels, duration_s, 0.0)


def as_samples(samples: npt.ArrayLike, channels: int) -> Samples:
    """``samples`` (``n``, or ``channels x n``) as contiguous float32, clipped to ``[-1, 1]``."""
    array = np.asarray(samples, dtype=np.float32)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] != channels:
        raise ValueError(f"expected {channels} x n audio samples, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError("audio samples must be finite")
    return np.ascontiguousarray(np.clip(array, -1.0, 1.0))


class AudioTrack:
    """One AAC stream of an output container, fed samples and drained up to a time."""

    def __init__(self, container: OutputContainer, *, rate: int, channels: int) -> None:
        if rate <= 0:
            raise ValueError(f"audio rate must be positive, got {rate}")
        if channels not in _LAYOUTS:
            raise ValueError(f"audio must be mono or stereo, got {channels} channels")
        self.rate = rate
        self.channels = channels
        self._layout = _LAYOUTS[channels]
        stream = container.add_stream("aac", rate=AUDIO_RATE)  # pyright: ignore[reportUnknownMemberType]
        stream.layout = self._layout
        stream.bit_rate = _BIT_RATE
        self._container = container
        self._stream: AudioStream = stream
        self._resampler = AudioResampler(format="fltp", layout=self._layout, rate=AUDIO_RATE)
        self._input_samples = 0
        self._pending: list[Samples] = []
        self._pending_len = 0
        #: Samples (at 48 kHz) handed to the encoder so far.
        self._encoded = 0

    @property
    def fed(self) -> bool:
        return self._input_samples > 0

    def feed(self, samples: npt.ArrayLike) -> None:
        """Append samples at the track's input rate."""
        array = as_samples(samples, self.channels)
        if not array.shape[1]:
            return
        frame = AudioFrame.from_ndarray(array, format="fltp", layout=self._layout)
        frame.sample_rate = self.rate
        frame.pts = self._input_samples
        frame.time_base = Fraction(1, self.rate)
        self._input_samples += array.shape[1]
        self._take(self._resampler.resample(frame))

    def drain(self, until_s: float) -> None:
        """Encode whole AAC frames that end by ``until_s`` (keeps the muxer interleaving)."""
        limit = round(until_s * AUDIO_RATE)
        chunks = min(self._pending_len, limit - self._encoded) // _AAC_FRAME
        if chunks > 0:
            self._encode(self._pop(chunks * _AAC_FRAME))

    def finish(self, duration_s: float) -> None:
        """Cut or pad the track to ``duration_s`` exactly, encode the rest and flush."""
        self._take(self._resampler.resample(None))
        total = round(duration_s * AUDIO_RATE)
        rest = self._pop(self._pending_len)
        wanted = max(0, total - self._encoded)
        if rest.shape[1] < wanted:
            pad = np.zeros((self.channels, wanted - rest.shape[1]), dtype=np.float32)
            rest = np.concatenate([rest, pad], axis=1)
        self._encode(rest[:, :wanted])
        self._container.mux(self._stream.encode(None))  # pyright: ignore[reportUnknownMemberType]

    def _take(self, frames: list[AudioFrame]) -> None:
        for frame in frames:
            array = frame.to_ndarray().astype(np.float32, copy=False)
            self._pending.append(array.reshape(self.channels, -1))
            self._pending_len += array.shape[-1]

    def _pop(self, count: int) -> Samples:
        joined = (
            np.concatenate(self._pending, axis=1)
            if self._pending
            else np.zeros((self.channels, 0), dtype=np.float32)
        )
        taken, left = joined[:, :count], joined[:, count:]
        self._pending = [left] if left.shape[1] else []
        self._pending_len = left.shape[1]
        return taken

    def _encode(self, samples: Samples) -> None:
        for start in range(0, samples.shape[1], _AAC_FRAME):
            chunk = np.ascontiguousarray(samples[:, start : start + _AAC_FRAME])
            frame = AudioFrame.from_ndarray(chunk, format="fltp", layout=self._layout)
            frame.sample_rate = AUDIO_RATE
            frame.pts = self._encoded
            frame.time_base = Fraction(1, AUDIO_RATE)
            self._encoded += chunk.shape[1]
            self._container.mux(self._stream.encode(frame))  # pyright: ignore[reportUnknownMemberType]


# --- reading ------------------------------------------------------------------------


def _stream(container: InputContainer) -> AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def decode_audio(container: InputContainer) -> Audio | None:
    """The container's first audio track, decoded from the start; ``None`` if it has none."""
    stream = _stream(container)
    if stream is None:
        return None
    container.seek(0)
    chunks: list[Samples] = []
    start: float | None = None
    rate = stream.codec_context.sample_rate or AUDIO_RATE
    for frame in container.decode(stream):
        if start is None and frame.pts is not None and frame.time_base is not None:
            start = float(frame.pts * frame.time_base)
        array = frame.to_ndarray().astype(np.float32, copy=False)
        chunks.append(
            array.reshape(frame.layout.nb_channels, -1)
            if frame.format.is_planar
            else array.reshape(-1, frame.layout.nb_channels).T
        )
        rate = frame.sample_rate
    channels = stream.codec_context.channels or 1
    samples = (
        np.concatenate(chunks, axis=1) if chunks else np.zeros((channels, 0), dtype=np.float32)
    )
    return Audio(samples=np.ascontiguousarray(samples), rate=rate, start_s=start or 0.0)


def audio_info(container: InputContainer) -> AudioInfo | None:
    """Codec, rate, channels, decoded length and start of the first audio track, if any."""
    stream = _stream(container)
    if stream is None:
        return None
    audio = decode_audio(container)
    if audio is None:  # pragma: no cover - the stream exists
        return None
    return AudioInfo(
        codec=stream.codec_context.name,
        rate=audio.rate,
        channels=audio.channels,
        duration_s=round(audio.duration_s, 6),
        start_s=round(audio.start_s, 6),
    )
