"""Plain factories for tests."""

from __future__ import annotations

from reel.service import keys
from reel.service.context import Services


def make_key(services: Services, *, credits: int = 100, name: str = "test") -> keys.IssuedKey:
    with services.db.write() as session:
        return keys.issue(session, name=name, credits=credits)
