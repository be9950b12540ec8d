"""The API's table of what each engine does besides generating agrees with the engines' own
Capabilities (the API never loads an engine, so it reads the table)."""

from __future__ import annotations

from reel.config import Settings
from reel.engines.registry import ENGINES, check_engine
from reel.service.extensions import ENGINE_OPERATIONS


def declared(engine: str, settings: Settings) -> frozenset[str]:
    caps = check_engine(engine, params={}, settings=settings)
    flags = {"extend": caps.extend, "edit": caps.edit, "references": caps.references}
    return frozenset(op for op, able in flags.items() if able)


def test_sandbox_declares_what_the_table_says(tmp_path: object) -> None:
    settings = Settings(data_dir=tmp_path)  # type: ignore[arg-type]
    assert declared("sandbox", settings) == ENGINE_OPERATIONS["sandbox"]


def test_upstreams_do_none_of_them() -> None:
    upstreams = {"fal", "replicate", "openai_videos", "upstream"}
    assert upstreams <= set(ENGINES)
    assert not any(ENGINE_OPERATIONS.get(name) for name in upstreams)


def test_every_engine_in_the_table_exists() -> None:
    assert set(ENGINE_OPERATIONS) <= set(ENGINES)
