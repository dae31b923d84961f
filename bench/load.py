"""Load: concurrent sellers against the production stack; errors, p50/p95 and throughput.

The stack is real: gunicorn serving ``config.wsgi`` (DEBUG off), PostgreSQL (its own database,
``studio_load`` beside DATABASE_URL's, dropped and re-created each run; no other database is
touched), Redis (db 9, flushed) and a real ``manage.py run_worker analysis`` process. Everything
stays on loopback.

Each simulated seller (one thread, its own cookie jar) signs in at ``/accounts/login/``, uploads
one real sample photo through the new-shoot page (multipart form, CSRF token) when that page
exists, otherwise gets a shoot created by ``seller.uploads.shoot_create`` in the set-up, then
until the time is up polls like the seller pages do: the dashboard ``/``, the shoot's live status
panel (htmx, every 2 s on the shoot page), now and then the full shoot page, and ``/healthz``.

Page requests are the target (0 errors, p95 <= 200 ms); ``upload`` (decode + store + enqueue)
and ``healthz`` (a probe that asks PostgreSQL, Redis and the workers) are reported apart.

    .venv/bin/python bench/load.py                        # 50 sellers, 60 s
    .venv/bin/python bench/load.py --sellers 50 --duration 60 --web-workers 4 --check
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# Run as a script, bench/ would be sys.path[0] and its queue.py shadow the stdlib ``queue``.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.support import REPO, use_stack  # noqa: E402
from tests.reliability.servers import (  # noqa: E402
    ServerProcess,
    free_port,
    start_gunicorn,
    start_worker,
)

# The bench process itself uses Django only for set-up (schema, sellers), on the load stack.
STACK = use_stack(
    "studio_load",
    redis_url=os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/9"),
    media_prefix="studio-load-media-",
)

import django  # noqa: E402
import httpx  # noqa: E402
import psycopg  # noqa: E402

PASSWORD = "load-Seller-pass-123"  # noqa: S105 - throw-away accounts in a throw-away database
PAGE_KINDS = ("login_page", "dashboard", "new_shoot_page", "status_poll", "shoot_page")
POLL_SECONDS = 2.0  # the shoot page's htmx status poll interval
MAX_SELLERS, MAX_DURATION = 200, 600


# --- set-up -------------------------------------------------------------------------------------


def prepare(sellers: int, samples: list[Path]) -> tuple[bool, dict[str, int]]:
    """Schema, sellers; shoots too when there is no upload page. Returns (page?, shoots)."""
    django.setup()
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command
    from django.urls import NoReverseMatch, reverse

    from core.queues import get_redis
    from core.roles import ensure_groups
    from seller.accounts import seller_create
    from seller.uploads import shoot_create

    get_redis().flushdb()
    call_command("migrate", verbosity=0, interactive=False, skip_checks=True)
    ensure_groups()
    try:
        reverse("seller:shoot_new")
        upload_page = True
    except NoReverseMatch:
        upload_page = False
    shoots: dict[str, int] = {}
    for n in range(sellers):
        username = f"load-seller-{n:03d}"
        seller = seller_create(
            username=username,
            password=PASSWORD,
            store_name=f"Load store {n}",
            catalog_seller_id=f"load-{n:05d}",
        )
        if not upload_page:
            path = samples[n % len(samples)]
            shoot = shoot_create(
                seller=seller,
                sku=f"LOAD-{n:03d}",
                title="Load test garment",
                category="top",
                scene="studio_white",
                files=[SimpleUploadedFile(path.name, path.read_bytes())],
            )
            shoots[username] = shoot.pk
    return upload_page, shoots


# --- the simulated sellers ---------------------------------------------------------------------


@dataclass
class Results:
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: kind -> [(started at, seconds, error or None)]
    requests: dict[str, list[tuple[float, float, str | None]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    samples: list[str] = field(default_factory=list)
    #: when the last seller finished signing in and uploading: the steady state starts there
    arrived: float = 0.0

    def record(self, kind: str, started: float, seconds: float, error: str | None = None) -> None:
        with self.lock:
            self.requests[kind].append((started, seconds, error))
            if error and len(self.samples) < 10:
                self.samples.append(f"{kind}: {error}")

    def arrive(self) -> None:
        with self.lock:
            self.arrived = max(self.arrived, time.monotonic())

    def times(self, kinds, *, since: float = 0.0) -> tuple[list[float], int]:
        picked = [r for kind in kinds for r in self.requests.get(kind, []) if r[0] >= since]
        return [seconds for _, seconds, _ in picked], sum(1 for *_, error in picked if error)


class Seller(threading.Thread):
    def __init__(
        self,
        n: int,
        *,
        base: str,
        deadline: float,
        results: Results,
        photo: Path,
        upload_page: bool,
        shoot_id: int | None,
        ramp: float,
        count: int,
    ) -> None:
        super().__init__(name=f"seller-{n}", daemon=True)
        self.username = f"load-seller-{n:03d}"
        self.n, self.base, self.deadline, self.results = n, base, deadline, results
        self.photo, self.upload_page, self.shoot_id = photo, upload_page, shoot_id
        self.random = random.Random(n)
        self.ramp, self.count = ramp, count

    def request(
        self,
        client: httpx.Client,
        kind: str,
        method: str,
        path: str,
        *,
        expect: tuple[int, ...] = (200,),
        **kwargs,
    ) -> httpx.Response | None:
        at, started = time.monotonic(), time.perf_counter()
        try:
            response = client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            self.results.record(kind, at, time.perf_counter() - started, type(exc).__name__)
            return None
        seconds = time.perf_counter() - started
        error = None if response.status_code in expect else f"HTTP {response.status_code}"
        self.results.record(kind, at, seconds, error)
        return response if error is None else None

    def run(self) -> None:
        # Sellers arrive spread over the ramp, not all in the same instant.
        time.sleep(self.ramp * self.n / max(1, self.count))
        with httpx.Client(base_url=self.base, timeout=30, follow_redirects=False) as client:
            if not self.sign_in(client):
                return
            if self.upload_page and not self.upload(client):
                return
            self.results.arrive()
            if self.shoot_id is None:
                return
            rounds = 0
            while time.monotonic() < self.deadline:
                status = f"/shoots/{self.shoot_id}/status/"
                self.request(client, "status_poll", "GET", status, headers={"HX-Request": "true"})
                if rounds % 3 == 0:
                    self.request(client, "dashboard", "GET", "/")
                    self.request(client, "healthz", "GET", "/healthz", expect=(200,))
                if rounds % 5 == 0:
                    self.request(client, "shoot_page", "GET", f"/shoots/{self.shoot_id}/")
                rounds += 1
                time.sleep(POLL_SECONDS * self.random.uniform(0.8, 1.2))

    def sign_in(self, client: httpx.Client) -> bool:
        if self.request(client, "login_page", "GET", "/accounts/login/") is None:
            return False
        data = {
            "username": self.username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
        }
        signed_in = self.request(
            client, "login", "POST", "/accounts/login/", data=data, expect=(302,)
        )
        return signed_in is not None

    def upload(self, client: httpx.Client) -> bool:
        if self.request(client, "new_shoot_page", "GET", "/shoots/new/") is None:
            return False
        data = {
            "sku": f"LOAD-{self.n:03d}",
            "title": "Load test garment",
            "category": "top",
            "scene": "studio_white",
            "csrfmiddlewaretoken": client.cookies.get("csrftoken", ""),
        }
        files = [("photos", (self.photo.name, self.photo.read_bytes(), "image/jpeg"))]
        response = self.request(
            client, "upload", "POST", "/shoots/new/", data=data, files=files, expect=(302,)
        )
        if response is None:
            return False
        match = re.search(r"/shoots/(\d+)/", response.headers.get("location", ""))
        self.shoot_id = int(match.group(1)) if match else None
        return self.shoot_id is not None


def warm_up(base: str, web_workers: int) -> None:
    """Wait until every gunicorn worker has booted the app (they do after the port opens) and
    served a first page, so start-up is not counted as request latency."""
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{base}/accounts/login/", timeout=30).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("gunicorn did not serve the login page within 120 s")
        time.sleep(0.2)

    def hit() -> None:
        for path in ("/accounts/login/", "/healthz"):
            httpx.get(f"{base}{path}", timeout=30)

    burst = [threading.Thread(target=hit) for _ in range(4 * web_workers)]
    for thread in burst:
        thread.start()
    for thread in burst:
        thread.join()


# --- report -------------------------------------------------------------------------------------


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def row(name: str, times: list[float], errors: int) -> str:
    """One table row: requests, errors, p50 / p95 / max in ms."""
    if not times:
        return f"{name:<16}{0:>9}{errors:>8}"
    ms = [t * 1000 for t in times]
    return (
        f"{name:<16}{len(ms):>9}{errors:>8}{statistics.median(ms):>10.1f}"
        f"{percentile(ms, 95):>10.1f}{max(ms):>10.1f}"
    )


def shoot_outcome() -> dict[str, int]:
    with psycopg.connect(STACK.database_url, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute("SELECT status, count(*) FROM seller_shoot GROUP BY status")
        return dict(rows.fetchall())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sellers", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60, help="seconds, ramp included")
    parser.add_argument("--ramp", type=float, default=20, help="sellers arrive over N seconds")
    parser.add_argument("--web-workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--analysis-workers", type=int, default=1)
    parser.add_argument(
        "--worker-nice",
        type=int,
        default=0,
        help="run workers under nice N: on a shared host, pages get the CPU before analysis",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on errors or p95 > 200 ms")
    args = parser.parse_args()
    sellers = max(1, min(args.sellers, MAX_SELLERS))
    duration = max(5.0, min(args.duration, MAX_DURATION))
    ramp = max(0.0, min(args.ramp, duration / 2))

    samples_dir = Path(os.environ.get("STUDIO_SAMPLES_DIR", REPO.parent / "shared" / "samples"))
    samples = sorted((samples_dir / "persons").glob("*.jpg"))
    if not samples:
        sys.exit(f"no sample photos in {samples_dir / 'persons'} (set STUDIO_SAMPLES_DIR)")

    STACK.recreate_database()
    upload_page, shoots = prepare(sellers, samples)
    logs = Path(tempfile.mkdtemp(prefix="studio-load-logs-"))
    processes: list[ServerProcess] = []
    try:
        web, base = start_gunicorn(
            env=STACK.env,
            log_path=logs / "gunicorn.log",
            workers=args.web_workers,
            port=free_port(),
        )
        processes.append(web)
        for n in range(args.analysis_workers):
            processes.append(
                start_worker(
                    "analysis",
                    env=STACK.env,
                    log_path=logs / f"w{n}.log",
                    name=f"load-a{n}",
                    nice=args.worker_nice,
                )
            )
        warm_up(base, args.web_workers)
        load_before = os.getloadavg()[0]
        results = Results()
        started = time.monotonic()
        deadline = started + duration
        threads = [
            Seller(
                n,
                base=base,
                deadline=deadline,
                results=results,
                photo=samples[n % len(samples)],
                upload_page=upload_page,
                shoot_id=shoots.get(f"load-seller-{n:03d}"),
                ramp=ramp,
                count=sellers,
            )
            for n in range(sellers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=duration + 120)
        elapsed = time.monotonic() - started
        outcome = shoot_outcome()
    finally:
        for process in processes:
            process.stop()
        shutil.rmtree(STACK.media, ignore_errors=True)

    kinds = [k for k in (*PAGE_KINDS, "login", "upload", "healthz") if k in results.requests]
    all_times, errors = results.times(results.requests)
    pages, page_errors = results.times(PAGE_KINDS)
    steady_from = results.arrived or started
    steady, steady_errors = results.times(PAGE_KINDS, since=steady_from)
    print(
        f"load: {sellers} sellers for {duration:.0f} s (arriving over {ramp:.0f} s) "
        f"against gunicorn ({args.web_workers} sync workers, DEBUG off), "
        f"PostgreSQL {STACK.database}, Redis {STACK.redis_url}, "
        f"{args.analysis_workers} analysis worker(s) "
        f"(nice {args.worker_nice}); uploads "
        f"{'through the new-shoot page' if upload_page else 'created in set-up'}; "
        f"{os.cpu_count()} CPU cores, load average {load_before:.1f} before the run"
    )
    print(f"{'kind':<16}{'requests':>9}{'errors':>8}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for kind in kinds:
        print(row(kind, *results.times([kind])))
    print(row("pages (all)", pages, page_errors))
    print(row("pages (steady)", steady, steady_errors))
    print(
        f"steady state: from {steady_from - started:.1f} s (every seller signed in and uploaded) "
        f"to the end"
    )
    print(
        f"throughput: {len(all_times) / elapsed:.1f} requests/s in all, "
        f"{len(pages) / elapsed:.1f} page requests/s; {errors} error(s) in {len(all_times)} "
        f"requests; wall {elapsed:.1f} s"
    )
    print(f"shoots by status at the end: {outcome}")
    for sample in results.samples:
        print(f"  error: {sample}")
    print(f"server logs: {logs}")
    p95 = percentile(steady, 95) * 1000 if steady else 0.0
    if args.check and (errors or p95 > 200):
        print(f"FAIL: {errors} error(s), steady page p95 {p95:.1f} ms (target 0, <= 200 ms)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
