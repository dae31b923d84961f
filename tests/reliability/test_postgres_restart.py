"""PostgreSQL goes away while gunicorn and a real analysis worker run against it.

The stack is real and private to this module: its own PostgreSQL cluster (initdb on a free
port; the shared cluster on 5432 is never touched), its own redis-server, gunicorn serving
``config.wsgi`` with DEBUG off, and ``manage.py run_worker analysis``. Set-up goes through the
real services in helper processes; outcomes are read back with plain SQL.

Guarantees checked: during the outage requests fail fast and cleanly (``/healthz`` 503 naming
the database, plain 500 pages, no hang, an upload keeps no file); afterwards the same gunicorn
and the same worker serve again, the job that the outage broke is moved on by the reconciler,
and every shoot ends analysed with exactly one analysis and mask per photo and no file lost or
left over.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from redis import Redis
from rq.job import Job

from tests.conftest import wait_for
from tests.reliability.appside import (
    call,
    last_json,
    media_consistency,
    psycopg_query,
    run_in_app,
)
from tests.reliability.servers import (
    BlackHole,
    PrivatePostgres,
    PrivateRedis,
    ServerProcess,
    app_env,
    manage,
    start_gunicorn,
    start_worker,
)
from tests.support.http import sign_in

pytestmark = pytest.mark.slow

USER, PASSWORD = "pg-seller", "pg-Seller-pass-123"
#: eight photos (the most a shoot takes) keep the worker busy long enough to be interrupted
MANY = [
    "shop_tank.jpg",
    "shop_tietop.jpg",
    "shop_knitdress.jpg",
    "street_0223.jpg",
    "street_0482.jpg",
    "street_0630.jpg",
    "street_1037.jpg",
    "street_1740.jpg",
]
FAST_ENOUGH = 3.0  # seconds: the most any request may take while the database is down


@dataclass
class Stack:
    pg: PrivatePostgres
    redis: PrivateRedis
    env: dict
    media: Path
    url: str
    web: ServerProcess
    worker: ServerProcess
    logs: Path
    seller_id: int

    def why(self, response: httpx.Response) -> str:
        """Failure message: the response and what gunicorn logged (tracebacks included)."""
        return (
            f"{response.status_code} {response.text[:300]}\n--- gunicorn:\n{self.web.log()[-6000:]}"
        )

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        with self.pg.connect("studio") as conn:
            return conn.execute(query, params).fetchall()

    def shoot(self, shoot_id: int) -> dict:
        status, attempts, error = self.sql(
            "SELECT status, analysis_attempts, last_error FROM seller_shoot WHERE id = %s",
            (shoot_id,),
        )[0]
        return {"status": status, "attempts": attempts, "error": error}

    def create_shoot(self, photos: list[str], sku: str, **extra):
        paths = [str(settings.SAMPLES_DIR / "persons" / name) for name in photos]
        code = call("create_shoot", username=USER, photos=paths, sku=sku, **extra)
        return run_in_app(code, env=self.env)

    def rq_status(self, job_id: str) -> str | None:
        connection = Redis.from_url(self.redis.url)
        try:
            return Job.fetch(job_id, connection=connection).get_status()
        except Exception:  # no such job
            return None
        finally:
            connection.close()

    def wait_status(self, shoot_id: int, status: str, timeout: float = 180) -> dict:
        def reached():
            current = self.shoot(shoot_id)
            return current if current["status"] == status else None

        try:
            return wait_for(reached, timeout=timeout, interval=0.2, message=f"shoot {status}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}: {self.shoot(shoot_id)}\n{self.worker.log()}") from None


@pytest.fixture(scope="module")
def stack():
    reason = PrivatePostgres.available()
    if reason:
        pytest.skip(f"PostgreSQL restart test needs a private cluster: {reason}")
    if not settings.SAMPLES_DIR.is_dir():
        pytest.skip(f"sample photos not found at {settings.SAMPLES_DIR}")
    # Not pytest's tmp_path: the postgres user must be able to reach the cluster directory.
    base = Path(tempfile.mkdtemp(prefix="studio-pg-restart-"))
    base.chmod(0o755)
    pg = PrivatePostgres(base / "pg")
    redis = PrivateRedis()
    started: list[ServerProcess] = []
    try:
        pg.init()
        pg.start()
        pg.createdb("studio")
        redis.start()
        media = base / "media"
        media.mkdir()
        env = app_env(database_url=pg.url("studio"), redis_url=redis.url, media_root=media)
        manage("migrate", "--noinput", "--skip-checks", env=env, timeout=300)
        seller = last_json(
            run_in_app(call("create_seller", username=USER, password=PASSWORD), env=env)
        )
        web, url = start_gunicorn(env=env, log_path=base / "gunicorn.log", workers=2)
        started.append(web)
        worker = start_worker("analysis", env=env, log_path=base / "worker.log", name="pg-w1")
        started.append(worker)
        yield Stack(pg, redis, env, media, url, web, worker, base, seller["seller"])
    finally:
        for process in started:
            process.stop()
        redis.kill()
        pg.destroy()
        shutil.rmtree(base, ignore_errors=True)


def _login(client: httpx.Client) -> None:
    response = sign_in(client, USER, PASSWORD)
    assert response.status_code == 302, response.text[:500]
    assert client.get("/").status_code == 200


def _timed(client: httpx.Client, path: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def _upload_files(media: Path) -> set[Path]:
    """Files written by uploads (the worker writes elsewhere: masks/, analysis/)."""
    return {p for folder in ("originals", "photos") for p in (media / folder).rglob("*")}


def _assert_clean_failure(response: httpx.Response) -> None:
    body = response.text
    # DEBUG is off: a plain error page, never a traceback or settings dump.
    assert "Traceback" not in body and "DEBUG = True" not in body, body[:500]


def test_postgres_restart_requests_fail_fast_then_recover_and_every_shoot_ends_correct(stack):
    web = httpx.Client(base_url=stack.url, timeout=30)
    _login(web)
    gunicorn_pid, worker_pid = stack.web.pid, stack.worker.pid

    # The stack works: a shoot is analysed by the worker (this also loads its models).
    warm = last_json(stack.create_shoot(["shop_tank.jpg"], sku="PG-WARM"))
    stack.wait_status(warm["shoot"], "mask_review")

    # A big shoot; PostgreSQL stops while the worker is in the middle of it.
    mid = last_json(stack.create_shoot(MANY, sku="PG-MID"))
    wait_for(lambda: stack.rq_status(mid["job"]) == "started", timeout=120, interval=0.02)
    stack.pg.stop("fast")
    outage_started = time.monotonic()

    # --- outage: everything answers quickly and cleanly ---------------------------------------
    slowest = 0.0
    while time.monotonic() - outage_started < 3:
        health, seconds = _timed(web, "/healthz")
        slowest = max(slowest, seconds)
        assert health.status_code == 503, stack.why(health)
        assert health.json()["checks"]["database"]["ok"] is False
        assert health.json()["checks"]["redis"]["ok"] is True
        page, seconds = _timed(web, "/")
        slowest = max(slowest, seconds)
        assert page.status_code == 500, stack.why(page)
        _assert_clean_failure(page)
        login_page, seconds = _timed(web, "/accounts/login/")
        slowest = max(slowest, seconds)
        assert login_page.status_code in (200, 500), stack.why(login_page)
        _assert_clean_failure(login_page)
    assert slowest < FAST_ENOUGH, f"a request took {slowest:.2f}s during the outage"
    # An upload during the outage stores its files, fails at its transaction, and removes them.
    uploads_before = _upload_files(stack.media)
    refused = stack.create_shoot(["shop_tietop.jpg"], sku="PG-OUTAGE", seller_id=stack.seller_id)
    assert refused.returncode != 0 and "OperationalError" in refused.stderr
    assert "in shoot_create" in refused.stderr, refused.stderr[-3000:]
    assert _upload_files(stack.media) == uploads_before
    outage_seconds = time.monotonic() - outage_started

    # --- PostgreSQL is back: the same processes serve again -----------------------------------
    stack.pg.start()
    back = time.monotonic()
    wait_for(lambda: web.get("/healthz").status_code == 200, timeout=15, interval=0.1)
    recovery_seconds = time.monotonic() - back
    dashboard = web.get("/")  # same session, same gunicorn
    assert dashboard.status_code == 200, stack.why(dashboard)
    assert stack.web.pid == gunicorn_pid and stack.web.alive()
    assert stack.worker.pid == worker_pid and stack.worker.alive()

    # The interrupted job ended (failed: its database writes could not happen) and the shoot
    # is still analyzing: nothing was half-committed. The reconciler gives it a new attempt.
    wait_for(
        lambda: stack.rq_status(mid["job"]) in ("failed", "finished"), timeout=60, interval=0.2
    )
    assert stack.rq_status(mid["job"]) == "failed", "the job finished before the outage"
    assert stack.shoot(mid["shoot"])["status"] == "analyzing"
    report = manage("reconcile", "--grace", "0", "--skip-checks", env=stack.env)
    assert f"shoot {mid['shoot']}" in report.stdout, report.stdout
    done = stack.wait_status(mid["shoot"], "mask_review")
    assert done["attempts"] == 2

    # New work after the restart goes through the same worker.
    after = last_json(stack.create_shoot(["shop_knitdress.jpg"], sku="PG-AFTER"))
    stack.wait_status(after["shoot"], "mask_review")

    # A restart while the worker is idle leaves it holding a dead connection: its next job must
    # still succeed on the first attempt, without a worker restart or the reconciler.
    stack.pg.stop("fast")
    stack.pg.start()
    idle = last_json(stack.create_shoot(["street_0223.jpg"], sku="PG-IDLE"))
    assert stack.wait_status(idle["shoot"], "mask_review", timeout=60)["attempts"] == 1
    assert stack.worker.pid == worker_pid and stack.worker.alive()

    # --- every shoot is in a correct state, nothing lost or duplicated ------------------------
    shoots = stack.sql("SELECT sku, status FROM seller_shoot ORDER BY id")
    assert shoots == [
        ("PG-WARM", "mask_review"),
        ("PG-MID", "mask_review"),
        ("PG-AFTER", "mask_review"),
        ("PG-IDLE", "mask_review"),
    ]
    per_photo = stack.sql(
        "SELECT p.id, (SELECT count(*) FROM seller_photoanalysis a WHERE a.photo_id = p.id),"
        " (SELECT count(*) FROM seller_maskversion m WHERE m.photo_id = p.id),"
        " (SELECT count(*) FROM seller_maskversion m WHERE m.photo_id = p.id AND m.is_chosen)"
        " FROM seller_shootphoto p"
    )
    assert len(per_photo) == 1 + len(MANY) + 2
    assert all(row[1:] == (1, 1, 1) for row in per_photo), per_photo
    events = stack.sql(
        "SELECT from_status, to_status FROM seller_shootevent WHERE shoot_id = %s ORDER BY id",
        (mid["shoot"],),
    )
    assert events == [
        ("uploaded", "analyzing"),
        ("analyzing", "analyzing"),  # the reconciler's new attempt
        ("analyzing", "mask_review"),
    ]
    with stack.pg.connect("studio") as conn:
        files = media_consistency(psycopg_query(conn), stack.media)
    assert files["orphans"] == [] and files["missing"] == [], files
    print(
        f"\noutage {outage_seconds:.1f}s, slowest request during it {slowest * 1000:.0f} ms, "
        f"healthz 200 again {recovery_seconds:.2f}s after PostgreSQL accepted connections"
    )


def test_database_that_never_answers_fails_requests_within_the_connect_timeout(tmp_path):
    """A database host that accepts TCP but never answers (hung, or packets dropped during a
    failover) must not hang requests until gunicorn kills its worker: the connect times out."""
    hole = BlackHole()
    env = app_env(
        database_url=f"postgres://postgres@127.0.0.1:{hole.port}/studio",
        redis_url=settings.REDIS_URL,
        media_root=tmp_path,
        DATABASE_CONNECT_TIMEOUT="2",
    )
    web, url = start_gunicorn(env=env, log_path=tmp_path / "gunicorn.log", workers=1)
    try:
        started = time.monotonic()
        response = httpx.get(f"{url}/healthz", timeout=60)
        seconds = time.monotonic() - started
        assert response.status_code == 503, response.text
        database = response.json()["checks"]["database"]
        assert database["ok"] is False and "timeout" in database["error"].lower(), database
        assert seconds < 2 + FAST_ENOUGH, f"/healthz took {seconds:.1f}s"
        print(f"\nunanswering database: /healthz 503 after {seconds:.2f}s (connect_timeout 2 s)")
    finally:
        web.stop()
        hole.close()
