"""procrastinate job queue schema (PostgreSQL only)

The scale-out queue keeps its jobs in the same PostgreSQL database, so a task row and its job
are written in one transaction. Its schema is applied here, from the SQL file of the pinned
procrastinate release (``procrastinate_<version>.sql``, copied verbatim from the package), so
``reel migrate`` brings both up to date under one advisory lock and a stale database is
refused at start like any other missing migration. A later procrastinate release is adopted by
a new revision that runs that release's own migration files.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 06:00:00
"""

from __future__ import annotations

from pathlib import Path

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PROCRASTINATE_VERSION = "3.10.0"
_SCHEMA = Path(__file__).resolve().parents[1] / f"procrastinate_{PROCRASTINATE_VERSION}.sql"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return  # the embedded queue needs no tables of its own
    _run_script(_SCHEMA.read_text(encoding="utf-8"))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    _run_script(
        """
        DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
            procrastinate_jobs, procrastinate_workers CASCADE;
        DO $$
        DECLARE fn record;
        BEGIN
            FOR fn IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                      JOIN pg_namespace n ON n.oid = p.pronamespace
                      WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
            LOOP
                EXECUTE 'DROP FUNCTION ' || fn.sig || ' CASCADE';
            END LOOP;
        END $$;
        DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
            procrastinate_job_status CASCADE;
        """
    )


def _run_script(sql: str) -> None:
    """Several statements, verbatim: a cursor without parameters parses no placeholders."""
    with op.get_bind().connection.dbapi_connection.cursor() as cursor:  # type: ignore[union-attr]
        cursor.execute(sql)
