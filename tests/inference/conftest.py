"""Fixtures for the Django-free inference tests (they need no settings module, no database)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def samples_path() -> Path:
    env = os.environ.get("STUDIO_SAMPLES_DIR")
    return Path(env) if env else REPO.parent / "shared" / "samples"


@pytest.fixture(scope="session")
def samples_dir() -> Path:
    """The real sample photos (outside the repo); skip the test only when they are absent."""
    path = samples_path()
    if not path.is_dir():
        pytest.skip(f"sample photos not found at {path} (set STUDIO_SAMPLES_DIR)")
    return path
