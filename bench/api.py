"""Change-feed throughput and latency of the catalog API under concurrent load, served by gunicorn.

Creates (once) and seeds a PostgreSQL database with sellers, approved assets and change-feed
events, starts gunicorn on 127.0.0.1 with production settings (DEBUG off, Redis cache for the
throttle), and drives ``GET /api/v1/changes/`` with a bounded pool of keep-alive client threads.
Prints requests/second and p50/p95/p99 latency per scenario:

- ``poll``: a client polling near the head of its feed (``since`` = a recent cursor; ~5 events
  per response), what a catalog sync does all day;
- ``page``: catching up through history, full pages of ``--limit`` events.

    .venv/bin/python bench/api.py                       # defaults: 3 workers x 1 thread
    .venv/bin/python bench/api.py --clients 16 --requests 20000 --workers 4 --threads 2
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/studio_bench_api"
DEFAULT_REDIS = "redis://127.0.0.1:6379/5"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def server_env(args) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": args.db,
        "REDIS_URL": args.redis,
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-0123456789abcdefghijklmnopqrstuvwxyz-0123456789",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "STATIC_MANIFEST": "0",
        "LOG_LEVEL": "WARNING",
        # the bench measures the API, not the limiter's refusals (the limiter still runs)
        "CATALOG_API_RATE": "100000000/m",
    }


def ensure_database(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def seed(args) -> dict:
    """Migrate and seed through Django in a child process; returns the token and cursors."""
    code = f"""
import json, django
django.setup()
from bench.api import seed_in_django
print("SEED" + json.dumps(seed_in_django(sellers={args.sellers}, events={args.events})))
"""
    env = server_env(args)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=REPO,
        env=env,
        check=True,
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True, text=True
    )
    line = next(line for line in out.stdout.splitlines() if line.startswith("SEED"))
    return json.loads(line[4:])


def seed_in_django(*, sellers: int, events: int) -> dict:
    """Bulk-insert a realistic feed (idempotent: reuses an earlier seed of the same size)."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from catalog.models import CatalogClient, CatalogEvent, EventType, Scope
    from catalog.services import client_token_create
    from generation.models import Asset, GenerationJob, GenerationRun
    from seller.models import Seller, Shoot, ShootStatus

    client = CatalogClient.objects.filter(name="bench").first()
    if client is None or CatalogEvent.objects.count() < events:
        with transaction.atomic():
            CatalogEvent.objects.all().delete()
            CatalogClient.objects.filter(name="bench").delete()
            User = get_user_model()
            made = []
            for n in range(sellers):
                user, _ = User.objects.get_or_create(username=f"bench-seller-{n}")
                seller, _ = Seller.objects.get_or_create(
                    user=user,
                    defaults={"store_name": f"Bench {n}", "catalog_seller_id": f"bench-{n:04d}"},
                )
                made.append(seller)
            rows = []
            per_shoot = 4
            for i in range(events // (per_shoot + 1) + 1):
                seller = made[i % sellers]
                shoot = Shoot.objects.create(
                    seller=seller, sku=f"SKU-{i:06d}", title=f"Dress {i}", category="dress"
                )
                Shoot.objects.filter(pk=shoot.pk).update(status=ShootStatus.APPROVED)
                run = GenerationRun.objects.create(shoot=shoot, status="succeeded")
                base = {
                    "seller_id": seller.catalog_seller_id,
                    "sku": shoot.sku,
                    "shoot_id": shoot.pk,
                    "title": shoot.title,
                    "category": "dress",
                }
                ids = []
                for v in range(per_shoot):
                    job = GenerationJob.objects.create(run=run, seed=v, variant=v)
                    asset = Asset.objects.create(
                        job=job,
                        kind="image",
                        file=f"assets/bench/{i}-{v}.png",
                        width=768,
                        height=1024,
                        checksum="0" * 64,
                    )
                    ids.append(asset.pk)
                    snapshot = {
                        "id": asset.pk,
                        "kind": "image",
                        "width": 768,
                        "height": 1024,
                        "checksum": "0" * 64,
                        "face": None,
                        "href": f"/api/v1/assets/{asset.pk}/",
                    }
                    rows.append(
                        CatalogEvent(
                            type=EventType.ASSET_APPROVED,
                            seller=seller,
                            shoot=shoot,
                            asset=asset,
                            payload={**base, "asset": snapshot},
                        )
                    )
                Asset.objects.filter(job__run=run).update(status="qa_approved")
                rows.append(
                    CatalogEvent(
                        type=EventType.SHOOT_APPROVED,
                        seller=seller,
                        shoot=shoot,
                        payload={**base, "asset_ids": ids},
                    )
                )
            CatalogEvent.objects.bulk_create(rows, batch_size=1000)
            client = CatalogClient.objects.create(name="bench")
            # the client serves half of the sellers: the scope filter is on the hot path
            client.sellers.set(made[: max(1, sellers // 2)])
    client.tokens.all().delete()
    _, raw = client_token_create(client=client, name="bench", scopes=[Scope.READ])
    ids = list(
        CatalogEvent.objects.filter(seller__catalog_clients=client)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return {"token": raw, "ids": ids, "events": CatalogEvent.objects.count()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(args, port: int) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.workers),
        "--worker-class",
        "gthread",
        "--threads",
        str(args.threads),
        "--keep-alive",
        "30",
        "--log-level",
        "warning",
    ]
    proc = subprocess.Popen(command, cwd=REPO, env=server_env(args), start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status in (200, 503):
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("gunicorn did not start")


class KeepAliveClient:
    """A minimal HTTP/1.1 keep-alive GET client.

    The load generator shares the two cores with gunicorn and PostgreSQL, so it must be cheap:
    requests are pre-built bytes and responses are framed by Content-Length, about a third of
    http.client's CPU per request.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        return sock

    def get(self, request: bytes) -> tuple[int, int]:
        """(status, body length) of one request; reconnects once if the server closed."""
        for attempt in (1, 2):
            if self.sock is None:
                self.sock = self._connect()
            try:
                self.sock.sendall(request)
                return self._read()
            except (OSError, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read(self) -> tuple[int, int]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed mid-body")
            rest += chunk
        self.buffer = rest[length:]
        return status, length

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


def run_load(port: int, token: str, paths: list[str], *, clients: int, total: int) -> dict:
    """``clients`` threads, one keep-alive connection each, ``total`` requests in all."""
    requests = [
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {token}\r\nAccept: application/json\r\n\r\n"
        ).encode()
        for path in paths
    ]
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(total))
    lock = threading.Lock()
    payload_bytes = [0]

    def worker(seed: int) -> None:
        rng = random.Random(seed)
        client = KeepAliveClient(port)
        local: list[float] = []
        size = 0
        while True:
            with lock:
                if next(counter, None) is None:
                    break
            request = rng.choice(requests)
            started = time.perf_counter()
            try:
                status, length = client.get(request)
            except (OSError, ConnectionError) as exc:
                errors.append(type(exc).__name__)
                continue
            local.append(time.perf_counter() - started)
            size += length
            if status != 200:
                errors.append(str(status))
        client.close()
        with lock:
            latencies.extend(local)
            payload_bytes[0] += size

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    ms = [v * 1000 for v in latencies]
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "rps": len(latencies) / elapsed,
        "p50": statistics.median(ms),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "errors": len(errors),
        "error_kinds": sorted(set(errors))[:5],
        "bytes_per_response": payload_bytes[0] / max(1, len(latencies)),
    }


def cpu_snapshot(server_pid: int, db_name: str) -> dict[tuple[str, int], float]:
    """CPU seconds used so far per process: the gunicorn tree, this database's PostgreSQL
    backends, Redis and this process (the client). The machine is shared: the difference of two
    snapshots says what the requests in between cost, whatever else is running."""
    import psutil

    found: dict[tuple[str, int], float] = {}

    def add(role: str, proc) -> None:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            return
        found[(role, proc.pid)] = times.user + times.system

    server = psutil.Process(server_pid)
    for proc in [server, *server.children(recursive=True)]:
        add("server", proc)
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("postgres:") and f" {db_name} " in cmdline:
            add("db", proc)
        elif (proc.info["name"] or "").startswith("redis-server"):
            add("redis", proc)
    add("client", psutil.Process())
    return found


def cpu_per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """ms of CPU per request and role; a process that appeared meanwhile counts in full, one
    that went away (its time is lost) is left out."""
    per = {"server": 0.0, "db": 0.0, "redis": 0.0, "client": 0.0}
    for key, seconds in after.items():
        per[key[0]] += seconds - before.get(key, 0.0)
    return {role: total * 1000 / max(1, requests) for role, total in per.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS))
    # single-threaded workers: two threads in one worker fight over the GIL (measured 2x4 and
    # 4x2 at 300-440 req/s, 3x1 at 530-670 on the same machine)
    parser.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    parser.add_argument("--threads", type=int, default=1, help="threads per gunicorn worker")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections")
    parser.add_argument("--requests", type=int, default=10000, help="requests per scenario")
    parser.add_argument("--sellers", type=int, default=20)
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--limit", type=int, default=100, help="page size of the 'page' run")
    parser.add_argument("--scenarios", default="poll,page")
    args = parser.parse_args()

    ensure_database(args.db)
    seeded = seed(args)
    ids = seeded["ids"]
    recent = ids[-200:-5]
    scenarios = {
        "poll": [f"/api/v1/changes/?since={cursor}&limit=20" for cursor in recent[-40:]],
        "page": [
            f"/api/v1/changes/?since={ids[i]}&limit={args.limit}"
            for i in range(0, max(1, len(ids) - args.limit), max(1, len(ids) // 200))
        ],
    }
    port = free_port()
    db_name = urlparse(args.db).path.lstrip("/")
    server = start_gunicorn(args, port)
    try:
        print(
            f"catalog change feed, gunicorn gthread {args.workers} workers x {args.threads} "
            f"threads, {args.clients} client connections, {seeded['events']} events in the db "
            f"({len(ids)} visible to the client), {os.cpu_count()} CPUs"
        )
        for name in args.scenarios.split(","):
            paths = scenarios[name]
            run_load(port, seeded["token"], paths, clients=args.clients, total=200)  # warm-up
            before = cpu_snapshot(server.pid, db_name)
            result = run_load(
                port, seeded["token"], paths, clients=args.clients, total=args.requests
            )
            after = cpu_snapshot(server.pid, db_name)
            per = cpu_per_request(before, after, result["requests"])
            service = per["server"] + per["db"] + per["redis"]
            print(
                f"{name:>5}: {result['rps']:7.0f} req/s  p50 {result['p50']:6.1f} ms  "
                f"p95 {result['p95']:6.1f} ms  p99 {result['p99']:6.1f} ms  "
                f"{result['requests']} requests in {result['seconds']:.1f} s, "
                f"{result['bytes_per_response'] / 1024:.1f} KiB/response, "
                f"errors {result['errors']} {result['error_kinds']}\n"
                f"       CPU per request: gunicorn {per['server']:.2f} ms, PostgreSQL "
                f"{per['db']:.2f} ms, Redis {per['redis']:.2f} ms (client {per['client']:.2f} "
                f"ms) -> two otherwise idle cores: ~{2000 / service:.0f} req/s"
            )
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
