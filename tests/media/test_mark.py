"""The visible mark: drawn where asked, as opaque as asked; audio and timing survive."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reel.media.mark import Mark, MarkSpec, burn_in
from reel.media.video import probe, sample_frames
from tests.media.clips import clip, streams


def _changed(before: np.ndarray, after: np.ndarray) -> tuple[slice, slice]:
    ys, xs = np.nonzero(np.abs(after.astype(int) - before.astype(int)).sum(axis=2) > 30)
    assert len(ys), "the mark changed nothing"
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


@pytest.mark.parametrize(
    ("position", "where"),
    [("bottom-right", (1, 1)), ("top-left", (0, 0)), ("bottom-left", (1, 0))],
)
def test_text_mark_lands_in_its_corner(position: str, where: tuple[int, int]) -> None:
    frame = np.full((180, 320, 3), 60, np.uint8)
    out = Mark(MarkSpec(text="AI", position=position, size=0.2, opacity=1.0), 320, 180)(frame)  # type: ignore[arg-type]
    rows, cols = _changed(frame, out)
    centre = ((rows.start + rows.stop) / 2 / 180, (cols.start + cols.stop) / 2 / 320)
    assert all((c > 0.5) == bool(w) for c, w in zip(centre, where, strict=True)), centre
    assert 0.1 * 180 <= rows.stop - rows.start <= 0.3 * 180  # about `size` of the short side


def test_opacity_scales_the_blend_and_zero_leaves_the_frame_alone() -> None:
    frame = np.full((96, 128, 3), 0, np.uint8)
    full = Mark(MarkSpec(text="AI", size=0.3, opacity=1.0), 128, 96)(frame)
    half = Mark(MarkSpec(text="AI", size=0.3, opacity=0.5), 128, 96)(frame)
    assert full.max() == 255 and 100 <= half.max() <= 155
    assert np.array_equal(Mark(MarkSpec(text="AI", opacity=0.0), 128, 96)(frame), frame)


def test_png_mark_keeps_its_transparency(tmp_path: Path) -> None:
    logo = np.zeros((20, 40, 4), np.uint8)
    logo[:, :20] = (255, 0, 0, 255)  # left half opaque red, right half transparent
    Image.fromarray(logo, "RGBA").save(tmp_path / "logo.png")
    frame = np.full((100, 200, 3), 60, np.uint8)
    spec = MarkSpec(image=tmp_path / "logo.png", position="center", size=0.2, opacity=1.0)
    out = Mark(spec, 200, 100)(frame)
    rows, cols = _changed(frame, out)
    assert rows.stop - rows.start == 20 and cols.stop - cols.start == 20  # only the opaque half
    assert tuple(out[50, cols.start + 5]) == (255, 0, 0)


def test_burn_in_marks_every_frame_and_copies_the_audio(tmp_path: Path) -> None:
    src = clip(tmp_path / "in.mp4", shade=20)
    out = tmp_path / "marked.mp4"
    burn_in(src, out, MarkSpec(text="AI generated", size=0.2, opacity=1.0))
    before, after = probe(src), probe(out)
    assert (after.frames, after.fps, after.width, after.height) == (
        before.frames,
        before.fps,
        before.width,
        before.height,
    )
    assert streams(out) == streams(src)  # the audio track is still there and decodes
    for frame in sample_frames(out, [0, 5, 11]):
        assert frame[60:, 64:].max() > 200  # white text in the bottom-right quarter
        assert frame[:30, :40].max() < 60  # and nothing in the top-left


def test_bad_specs_are_refused() -> None:
    with pytest.raises(ValueError, match="either text or an image"):
        MarkSpec()
    with pytest.raises(ValueError, match="position"):
        MarkSpec(text="x", position="middle")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="opacity"):
        MarkSpec(text="x", opacity=2)
