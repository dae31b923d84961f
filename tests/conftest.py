"""Shared fixtures: real Redis, real RQ worker processes, sample photos."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def redis_conn():
    """The test Redis db, emptied before and after the test."""
    from core.queues import get_redis

    conn = get_redis()
    conn.flushdb()
    yield conn
    conn.flushdb()


@pytest.fixture
def samples_dir() -> Path:
    path = settings.SAMPLES_DIR
    if not path.is_dir():
        pytest.skip(f"sample photos not found at {path} (set STUDIO_SAMPLES_DIR)")
    return path


def worker_env(**extra: str) -> dict[str, str]:
    """Environment for a worker subprocess: same settings, but the *test* database."""
    from django.db import connection

    env = dict(os.environ)
    db = connection.settings_dict
    env["DATABASE_URL"] = (
        f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    )
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class WorkerProcess:
    """A real ``manage.py run_worker`` process (not RQ's synchronous mode)."""

    def __init__(self, queue: str, *, burst: bool, name: str, log_path: Path, env: dict) -> None:
        args = [sys.executable, "manage.py", "run_worker", queue, "--name", name]
        if burst:
            args.append("--burst")
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self._log.flush()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()


@pytest.fixture
def start_worker(tmp_path, redis_conn):
    started: list[WorkerProcess] = []

    def start(queue: str, *, burst: bool = True, **env_extra: str) -> WorkerProcess:
        name = f"test-{queue}-{len(started)}-{os.getpid()}"
        worker = WorkerProcess(
            queue,
            burst=burst,
            name=name,
            log_path=tmp_path / f"{name}.log",
            env=worker_env(**env_extra),
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.1, message: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


@pytest.fixture(scope="session")
def tiny_models() -> Path:
    """Tiny randomly initialised model sets in the test MODEL_ROOT (built once per session).

    The same folder is in the environment of worker subprocesses (tests/pytest_env.py).
    """
    from generation.inference.tiny import make_tiny_models

    make_tiny_models(settings.MODEL_ROOT, sets=("tiny-sd15", "tiny-svd"))
    return settings.MODEL_ROOT
