"""Enqueue-to-start latency of the RQ queues against real Redis, and model reuse in a GPU worker.

Starts one real ``manage.py run_worker gpu`` process (ModelKeepingWorker), enqueues jobs one at a
time (each waits for the previous to finish, so the figure is dispatch latency, not queueing
behind other work), and prints median / p95 latency and the worker's model-load counter.

    REDIS_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/queue.py --jobs 200
"""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, this folder is sys.path[0] and this file would shadow the stdlib ``queue``
# module that Django and RQ import: put the repository root there instead.
REPO = Path(__file__).resolve().parent.parent
sys.path[0] = str(REPO)

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/2")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from core.queues import enqueue_now, fetch_job, get_redis  # noqa: E402
from generation.workers import read_model_stats  # noqa: E402


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))
    return ordered[index]


def wait_finished(job_id: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = fetch_job(job_id)
        if job is not None and job.get_status() == "finished":
            return job.return_value()
        if job is not None and job.get_status() == "failed":
            raise RuntimeError(f"bench job failed: {job.latest_result().exc_string}")
        time.sleep(0.001)
    raise TimeoutError(job_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    args = parser.parse_args()

    redis = get_redis()
    redis.flushdb()
    name = f"bench-gpu-{os.getpid()}"
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "gpu", "--name", name],
        cwd=REPO,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Warm-up: the first job pays for imports and the model load; it is not counted.
        enqueue_now("gpu", "bench.queue_jobs.record_start", (time.time(),), "bench-warmup")
        wait_finished("bench-warmup", timeout=120)
        latencies = []
        for n in range(args.jobs):
            job_id = f"bench-{n}"
            enqueue_now("gpu", "bench.queue_jobs.record_start", (time.time(),), job_id)
            latencies.append(wait_finished(job_id) * 1000)
        loads = read_model_stats(redis, name)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        redis.flushdb()

    print(f"jobs: {len(latencies)} (one real ModelKeepingWorker, Redis {os.environ['REDIS_URL']})")
    print(
        f"enqueue-to-start latency: median {statistics.median(latencies):.1f} ms, "
        f"p95 {percentile(latencies, 95):.1f} ms, max {max(latencies):.1f} ms"
    )
    print(f"model loads in the worker for {args.jobs + 1} jobs: {loads}")
    print("goal: median <= 50 ms:", "met" if statistics.median(latencies) <= 50 else "NOT met")


if __name__ == "__main__":
    main()
