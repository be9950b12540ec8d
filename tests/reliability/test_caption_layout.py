"""The sandbox's caption layout is linear: any prompt up to the maximum length (one huge word,
thousands of tiny ones, dashes, blank lines) lays out in well under a second."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator

import pytest

from reel.config import Settings
from reel.engines import sandbox

MAX_PROMPT = Settings().max_prompt_length
#: Random prompts per run; REEL_TEST_LONG=1 runs the long version.
SAMPLES = 400 if os.environ.get("REEL_TEST_LONG") else 25
#: Sizes the sandbox renders captions at: the smallest tier and the largest, both ways round.
SIZES = [(64, 36), (1280, 720), (720, 1280), (1920, 1080), (1080, 1920)]

HOSTILE = [
    "x" * MAX_PROMPT,  # one word, far wider than any frame
    "W" * (MAX_PROMPT - 3) + " hi",
    "—" * MAX_PROMPT,  # drawn as rules, measured apart
    "ab " * (MAX_PROMPT // 3),
    "\n" * MAX_PROMPT,
    ("y" * 300 + "\n") * (MAX_PROMPT // 301),
]


@pytest.fixture
def measured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Characters measured so far. The quadratic layout measured a 4,000-character word about
    n²/2 times over; the budget stops it at once instead of after minutes of CPU."""
    counts = [0]
    real = sandbox._text_width

    def counting(text: str, font: sandbox._Font) -> float:
        counts[0] += len(text)
        if counts[0] > 50 * MAX_PROMPT:
            raise AssertionError(f"layout measured over {50 * MAX_PROMPT} characters")
        return real(text, font)

    monkeypatch.setattr(sandbox, "_text_width", counting)
    yield counts


@pytest.mark.parametrize("prompt", HOSTILE, ids=lambda p: f"{p[:3]!r}x{len(p)}")
def test_hostile_prompts_lay_out_in_linear_time(prompt: str, measured: list[int]) -> None:
    for width, height in SIZES:
        for image in (False, True):
            measured[0] = 0
            started = time.perf_counter()
            sandbox._caption_sprite(prompt, width, height, image=image)
            took = time.perf_counter() - started
            assert took < 0.5, (width, height, image, took)
            assert measured[0] <= 4 * len(prompt) + 5000, (width, height, measured[0])


def test_random_prompts_fit_their_box(measured: list[int]) -> None:
    rng = random.Random(19)
    font = sandbox._font(40)
    for _ in range(SAMPLES):
        words = [
            rng.choice(["x", "—", "Wm", "ä", "fox"]) * rng.choice([1, 2, 5, 40, 400, 2000])
            for _ in range(rng.randint(1, 30))
        ]
        prompt = rng.choice([" ", "\n", " — "]).join(words)[:MAX_PROMPT]
        max_width = rng.choice([30.0, 200.0, 800.0])
        measured[0] = 0
        started = time.perf_counter()
        lines = sandbox._wrap(prompt, font, max_width, max_lines=6)
        assert time.perf_counter() - started < 0.5
        assert 1 <= len(lines) <= 6
        # every line fits, except a single glyph wider than the box on its own
        assert all(len(line) <= 1 or sandbox._text_width(line, font) <= max_width for line in lines)
        shown = "".join(lines).replace("…", "")
        assert shown.replace(" ", "") and set(shown) <= set(prompt)


def test_short_prompts_wrap_as_before() -> None:
    font = sandbox._font(20)
    lines = sandbox._wrap("a red fox trotting through fresh snow", font, 120, max_lines=6)
    assert " ".join(lines) == "a red fox trotting through fresh snow"
    assert len(lines) > 1 and all(sandbox._text_width(line, font) <= 120 for line in lines)
    long = sandbox._wrap("word " * 200, font, 120, max_lines=3)
    assert len(long) == 3 and long[-1].endswith("…")
