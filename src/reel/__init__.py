"""Reel: a self-hosted video generation service speaking the Sora 2 API contract."""

__version__ = "0.1.0"
