"""character frames: several reference frames per character, and when its files went

- ``characters.frame_keys`` (JSON list) replaces ``frame_key``: an existing character keeps its
  one frame as a list of one.
- ``characters.purged_at``: when its frames were removed from storage. A character deleted
  before this revision had its frame removed then, so it counts as purged.

Downgrading keeps each character's first frame; the files of its other frames stay in storage
under keys no row names.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03 14:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_CHARACTERS = sa.table(
    "characters",
    sa.column("id", sa.String()),
    sa.column("frame_key", sa.String()),
    sa.column("frame_keys", sa.JSON()),
    sa.column("deleted_at", sa.Float()),
    sa.column("purged_at", sa.Float()),
)


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("characters") as batch:
        batch.add_column(sa.Column("frame_keys", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("purged_at", sa.Float(), nullable=True))
    c = _CHARACTERS.c
    for character_id, frame_key in bind.execute(sa.select(c.id, c.frame_key)).all():
        bind.execute(
            _CHARACTERS.update().where(c.id == character_id).values(frame_keys=[frame_key])
        )
    bind.execute(
        _CHARACTERS.update().where(c.deleted_at.is_not(None)).values(purged_at=c.deleted_at)
    )
    with op.batch_alter_table("characters") as batch:
        batch.alter_column("frame_keys", existing_type=sa.JSON(), nullable=False)
        batch.drop_column("frame_key")


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table("characters") as batch:
        batch.add_column(sa.Column("frame_key", sa.String(length=200), nullable=True))
    c = _CHARACTERS.c
    for character_id, frame_keys in bind.execute(sa.select(c.id, c.frame_keys)).all():
        first = frame_keys[0] if isinstance(frame_keys, list) and frame_keys else ""
        bind.execute(_CHARACTERS.update().where(c.id == character_id).values(frame_key=first))
    with op.batch_alter_table("characters") as batch:
        batch.alter_column("frame_key", existing_type=sa.String(length=200), nullable=False)
        batch.drop_column("purged_at")
        batch.drop_column("frame_keys")
