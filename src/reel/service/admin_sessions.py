"""Admin console sessions, kept on the server: signing out ends a session for every copy of
its cookie, "sign out everywhere" ends them all, and a new admin token disowns the old ones.

The cookie carries a random nonce (signed); the row is keyed by the nonce's SHA-256, so the
table alone cannot be turned back into a working cookie.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from reel.db.models import AdminSession
from reel.service import audit
from reel.service.clock import now
from reel.service.context import Services


def start(
    services: Services, session_id: str, *, token_tag: str, expires_at: float, client: str = "-"
) -> None:
    """Record a new session (and forget expired ones and those of an older admin token), and
    the sign-in in the audit log."""
    t = now()
    with services.db.write() as session:
        session.execute(
            delete(AdminSession).where(
                (AdminSession.expires_at < t) | (AdminSession.token_tag != token_tag)
            )
        )
        session.add(
            AdminSession(id=session_id, token_tag=token_tag, created_at=t, expires_at=expires_at)
        )
        audit.record(
            session,
            actor=audit.CONSOLE,
            action="admin.sign_in",
            target=f"session:{session_id[:12]}",
            after={"client": client, "expiresAt": expires_at},
        )


def active(services: Services, session_id: str, *, token_tag: str) -> bool:
    """The session was started with the current admin token, has not expired or ended."""
    with services.db.read() as session:
        found = session.scalar(
            select(AdminSession.id).where(
                AdminSession.id == session_id,
                AdminSession.token_tag == token_tag,
                AdminSession.expires_at >= now(),
            )
        )
    return found is not None


def end(services: Services, session_id: str) -> None:
    with services.db.write() as session:
        session.execute(delete(AdminSession).where(AdminSession.id == session_id))
        audit.record(
            session,
            actor=audit.CONSOLE,
            action="admin.sign_out",
            target=f"session:{session_id[:12]}",
        )


def end_all(services: Services) -> int:
    """Sign every admin out; returns how many sessions ended."""
    with services.db.write() as session:
        ended = session.execute(select(AdminSession.id)).scalars().all()
        session.execute(delete(AdminSession))
        audit.record(
            session,
            actor=audit.CONSOLE,
            action="admin.sign_out_all",
            target="sessions",
            after={"ended": len(ended)},
        )
    return len(ended)
