"""Migration 0006 on SQLite and PostgreSQL: the characters table, down and up again, in step
with the models."""

from __future__ import annotations

from sqlalchemy import Engine, inspect

from reel.db.migrate import upgrade
from tests.db.migrations import migrate_to, schema_differences


def test_characters_table_up_down_and_up(engine: Engine) -> None:
    migrate_to(engine, "0006")
    columns = {c["name"] for c in inspect(engine).get_columns("characters")}
    assert columns == {"id", "key_id", "name", "frame_key", "created_at", "deleted_at"}
    migrate_to(engine, "0005", down=True)
    assert "characters" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "characters" in inspect(engine).get_table_names()
    assert [d for d in schema_differences(engine) if "characters" in str(d)] == []
