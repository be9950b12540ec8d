"""characters: reusable characters of an API key (``/v1/videos/characters``)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "characters",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("frame_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("deleted_at", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_characters_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_characters")),
    )
    op.create_index(op.f("ix_characters_key_id"), "characters", ["key_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_characters_key_id"), table_name="characters")
    op.drop_table("characters")
