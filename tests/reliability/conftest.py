"""Fixtures that own real server processes and file systems, so tests can break them safely."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.reliability.servers import PrivateRedis

__all__ = ["PrivateRedis"]


@pytest.fixture
def private_redis(settings):
    if not shutil.which("redis-server"):
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    settings.RQ_QUEUES = {
        name: {**conf, "URL": server.url} for name, conf in settings.RQ_QUEUES.items()
    }
    yield server
    server.kill()


# --- a small, fillable media root ------------------------------------------------------------

BALLAST_DIR = "zz-ballast"


class SmallDisk:
    """A tmpfs of a few MB used as MEDIA_ROOT; ``fill`` leaves exactly ``leave`` bytes free.

    The ballast lives in its own folder on the same file system, so it takes the space the app
    would use and is easy to leave out when checking what the app wrote.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ballast = path / BALLAST_DIR / "ballast.bin"

    def free_bytes(self) -> int:
        stat = os.statvfs(self.path)
        return stat.f_bavail * stat.f_frsize

    def fill(self, leave: int = 0) -> None:
        """Take all free space, then give back ``leave`` bytes (rounded up to whole pages)."""
        self.ballast.parent.mkdir(exist_ok=True)
        chunk = b"\0" * (1 << 16)
        # Unbuffered: nothing is left in a Python buffer to fail again on close.
        with open(self.ballast, "ab", buffering=0) as handle:
            try:
                while handle.write(chunk):
                    pass
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
            size = handle.seek(0, os.SEEK_END)
        os.truncate(self.ballast, max(0, size - leave))
        assert abs(self.free_bytes() - leave) <= 2 * 4096, (self.free_bytes(), leave)

    def empty(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.ballast.unlink()

    def files(self) -> list[str]:
        found = []
        for folder, _dirs, names in os.walk(self.path):
            for name in names:
                relative = str(Path(folder, name).relative_to(self.path))
                if not relative.startswith(BALLAST_DIR):
                    found.append(relative)
        return sorted(found)


def _mount_tmpfs(path: Path, size: str) -> str | None:
    """Mount a tmpfs; None on success, else why it could not be mounted."""
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root"
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True,
        text=True,
    )
    return None if result.returncode == 0 else f"mount -t tmpfs failed: {result.stderr.strip()}"


@pytest.fixture
def small_media(settings):
    """MEDIA_ROOT on its own 8 MB tmpfs for this test (in-process code only)."""
    path = Path(tempfile.mkdtemp(prefix="studio-small-media-"))
    reason = _mount_tmpfs(path, "8m")
    if reason:
        path.rmdir()
        pytest.skip(f"disk-full tests need a small file system: {reason}")
    settings.MEDIA_ROOT = path  # default_storage follows the setting_changed signal
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
        path.rmdir()
