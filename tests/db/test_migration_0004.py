"""Migration 0004 on SQLite and PostgreSQL: existing retries numbered, destinations filled,
downgrade and upgrade again, models kept in sync, one retry per task enforced."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from reel.db.migrate import current_revision, head_revision, upgrade
from tests.db.migrations import migrate_to, schema_differences

TASK = (
    "INSERT INTO tasks (id, key_id, status, surface, mode, tier, model, aspect, duration_s,"
    " width, height, prompt, seed, priority, credits, extra, stage, percent, attempts,"
    " max_attempts, cancel_requested, created_at) VALUES (:id, 'key_a', 'failed', 'seed',"
    " 'textToVideo', 'sora2', 'm', 'landscape', 10, 64, 36, 'p', 0, 0, 5, :extra, 'failed',"
    " 0, 1, 3, false, :at)"
)


def test_upgrade_links_retries_fills_destinations_and_downgrades(engine: Engine) -> None:
    migrate_to(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO api_keys (id, name, prefix, key_hash, balance, created_at)"
                " VALUES ('key_a', 'a', 'p', 'h', 5, 0)"
            )
        )
        for task_id, extra, at in [
            ("task_orig", {}, 1.0),
            ("task_r1", {"retryOf": "task_orig"}, 2.0),
            ("task_r2", {"retryOf": "task_orig"}, 3.0),
        ]:
            conn.execute(text(TASK), {"id": task_id, "extra": json.dumps(extra), "at": at})
        conn.execute(
            text(
                "INSERT INTO webhook_deliveries (id, key_id, task_id, event, url, payload, status,"
                " attempts, next_attempt_at, created_at) VALUES ('msg_1', 'key_a', 'task_orig',"
                " 'video.failed', 'HTTPS://Hooks.Example.com/x?y=1', '{}', 'pending', 0, 0, 0)"
            )
        )
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        links = dict(conn.execute(text("SELECT id, retry_key FROM tasks")).all())
        destination = conn.execute(text("SELECT destination FROM webhook_deliveries")).scalar()
    assert links == {"task_orig": None, "task_r1": "task_orig:0", "task_r2": "task_orig:1"}
    assert destination == "https://hooks.example.com:443"
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("UPDATE tasks SET retry_key = 'task_orig:1' WHERE id = 'task_orig'"))

    migrate_to(engine, "0003", down=True)
    assert current_revision(engine) == "0003"
    upgrade(engine)
    assert schema_differences(engine) == []
