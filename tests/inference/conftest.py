"""Fixtures for the Django-free inference tests (they need no settings module, no database)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.samples import samples_path


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real sample photos (outside the repo); skip the test only when they are absent."""
    path = samples_path()
    if not path.is_dir():
        pytest.skip(f"sample photos not found at {path} (set STUDIO_SAMPLES_DIR)")
    return path
