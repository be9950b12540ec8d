"""Migration 0007 on SQLite and PostgreSQL: a character's one frame becomes a list of one; one
deleted before it counts as purged; down (first frame kept) and up again, in step with the
models."""

from __future__ import annotations

import json

from sqlalchemy import Engine, inspect, text

from reel.db.migrate import upgrade
from tests.db.migrations import migrate_to, schema_differences

#: The table rebuild must hold with foreign keys enforced, as Reel runs SQLite.
SQLITE_FOREIGN_KEYS = True

CHARACTER = text(
    "INSERT INTO characters (id, key_id, name, frame_key, created_at, deleted_at)"
    " VALUES (:id, 'key_a', :name, :frame, 1, :deleted)"
)


def _frames(engine: Engine) -> dict[str, tuple[list[str], float | None]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, frame_keys, purged_at FROM characters")).all()
    return {
        r.id: (
            r.frame_keys if isinstance(r.frame_keys, list) else json.loads(r.frame_keys),
            r.purged_at,
        )
        for r in rows
    }


def test_one_frame_becomes_a_list_and_back(engine: Engine) -> None:
    migrate_to(engine, "0004")
    migrate_to(engine, "0006")  # 0005 switches SQLite's foreign keys off before its first write
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO accounts (id, name, balance, created_at) VALUES ('acct_a', 'a', 0, 1)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO api_keys (id, account_id, name, prefix, key_hash, created_at)"
                " VALUES ('key_a', 'acct_a', 'a', 'p', 'h', 1)"
            )
        )
        conn.execute(
            CHARACTER,
            {
                "id": "char_live",
                "name": "Mara",
                "frame": "characters/char_live.png",
                "deleted": None,
            },
        )
        conn.execute(
            CHARACTER,
            {"id": "char_gone", "name": "Ivo", "frame": "characters/char_gone.png", "deleted": 5.0},
        )
    migrate_to(engine, "0007")
    assert _frames(engine) == {
        "char_live": (["characters/char_live.png"], None),
        "char_gone": (["characters/char_gone.png"], 5.0),  # its frame went when it was deleted
    }
    columns = {c["name"] for c in inspect(engine).get_columns("characters")}
    assert "frame_key" not in columns and {"frame_keys", "purged_at"} <= columns
    with engine.begin() as conn:  # a character with three frames, as 0007 makes them
        conn.execute(
            text("UPDATE characters SET frame_keys = :keys WHERE id = 'char_live'"),
            {"keys": json.dumps([f"characters/char_live.{n}.png" for n in range(3)])},
        )

    migrate_to(engine, "0006", down=True)
    with engine.connect() as conn:
        kept = dict(conn.execute(text("SELECT id, frame_key FROM characters")).all())
    assert kept == {
        "char_live": "characters/char_live.0.png",
        "char_gone": "characters/char_gone.png",
    }
    upgrade(engine)
    assert [d for d in schema_differences(engine) if "characters" in str(d)] == []
