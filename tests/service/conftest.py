"""These tests run twice: embedded (SQLite) and scaled out (PostgreSQL + procrastinate + S3)."""

from __future__ import annotations

import pytest

from tests.conftest import BACKENDS, backend_param

backend = pytest.fixture(params=BACKENDS)(backend_param)
