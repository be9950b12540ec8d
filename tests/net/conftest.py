"""Fixtures: a real HTTP server on loopback."""

from tests.loopback import loopback_policy, server

__all__ = ["loopback_policy", "server"]
