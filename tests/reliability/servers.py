"""Real server processes that fault tests own and may stop, kill or restart.

Nothing here touches the shared PostgreSQL on 5432 or the shared Redis on 6379: each test gets
its own cluster / redis-server on a free port, so killing them cannot disturb anyone else's run.
Also used by ``bench/load.py`` (the app stack: migrate, gunicorn, workers).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, *, timeout: float = 30, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port} after {timeout}s")


# --- Redis -----------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server on its own port, no persistence (a restart loses every key)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, timeout=10, proc=self.proc)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def restart(self) -> None:
        self.kill()
        self.start()


# --- PostgreSQL ------------------------------------------------------------------------------


def pg_binary(name: str) -> str | None:
    for directory in PG_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    return shutil.which(name)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster (initdb, trust auth) on its own port and socket dir.

    initdb and postgres refuse to run as root, so as root they run as the ``postgres`` user.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"
        self.log = base / "postgres.log"
        self.port = free_port()
        base.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def available() -> str | None:
        """None if a private cluster can be made here, else the reason it cannot."""
        if not pg_binary("initdb") or not pg_binary("pg_ctl"):
            return "PostgreSQL server binaries (initdb, pg_ctl) are not installed"
        if os.geteuid() == 0 and not shutil.which("runuser"):
            return "running as root without runuser to drop to the postgres user"
        return None

    def _run(self, args: list[str], *, timeout: float = 60) -> subprocess.CompletedProcess:
        if os.geteuid() == 0:
            args = ["runuser", "-u", "postgres", "--", *args]
        return subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=True, cwd="/"
        )

    def init(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self._run(
            [pg_binary("initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N"],
            timeout=120,
        )
        # Test cluster: durability does not matter, start/stop speed does.
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.base}'\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\nmax_connections = 60\n"
            )

    def start(self) -> None:
        self._run([pg_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "start"])

    def stop(self, mode: str = "fast") -> None:
        """fast: like a service restart (sessions terminated); immediate: like a crash."""
        self._run([pg_binary("pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"])

    def is_running(self) -> bool:
        pid_file = self.data / "postmaster.pid"
        return pid_file.exists()

    def url(self, dbname: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{dbname}"

    def connect(self, dbname: str = "postgres"):
        import psycopg

        return psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=5)

    def createdb(self, name: str) -> None:
        with self.connect() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

    def destroy(self) -> None:
        if self.is_running():
            with contextlib.suppress(subprocess.SubprocessError):
                self.stop("immediate")
        shutil.rmtree(self.base, ignore_errors=True)


class BlackHole:
    """A TCP port that accepts connections (kernel backlog) but never answers a byte.

    What a client sees when the database host hangs or packets are dropped mid-failover.
    """

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


# --- the app ---------------------------------------------------------------------------------


def app_env(*, database_url: str, redis_url: str, media_root: Path, **extra: str) -> dict:
    """Production-like environment for app subprocesses (DEBUG off, real SECRET_KEY)."""
    env = dict(os.environ)
    env.update(
        {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "MEDIA_ROOT": str(media_root),
            "DEBUG": "false",
            "SECRET_KEY": "reliability-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF",
            "ALLOWED_HOSTS": "127.0.0.1",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "STATIC_MANIFEST": "false",
            "RECONCILE_GRACE_SECONDS": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def manage(
    *args: str, env: dict, timeout: float = 180, check: bool = True
) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` in a subprocess. ``--skip-checks`` where a command supports it: system
    checks are CI's own step and must not make a fault test fail on an unrelated admin warning."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} exited {result.returncode}\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-5000:]}"
        )
    return result


class ServerProcess:
    """A long-running subprocess with its output in a log file; stopped politely, then killed."""

    def __init__(self, args: list[str], *, env: dict, log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches gunicorn's workers
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._log.close()

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


def start_gunicorn(
    *, env: dict, log_path: Path, workers: int = 2, threads: int = 1, port: int | None = None
) -> tuple[ServerProcess, str]:
    """The production WSGI server on loopback; returns the process and its base URL."""
    port = port or free_port()
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    args = [
        gunicorn,
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        "--access-logfile",
        "-",
    ]
    server = ServerProcess(args, env=env, log_path=log_path)
    try:
        wait_for_port(port, timeout=60, proc=server.proc)
    except RuntimeError as exc:
        raise RuntimeError(f"{exc}\n{server.log()[-3000:]}") from exc
    return server, f"http://127.0.0.1:{port}"


def start_worker(
    queue: str, *, env: dict, log_path: Path, name: str, nice: int = 0
) -> ServerProcess:
    """``manage.py run_worker QUEUE``; ``nice`` > 0 lowers its CPU priority below the web's."""
    args = [sys.executable, "manage.py", "run_worker", queue, "--name", name, "--skip-checks"]
    if nice:
        args = ["nice", "-n", str(nice), *args]
    return ServerProcess(args, env=env, log_path=log_path)
