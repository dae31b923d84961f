"""Run an RQ worker for one queue: ``manage.py run_worker gpu``.

``analysis`` and ``gpu`` use ModelKeepingWorker (models stay loaded across jobs); ``default`` uses
RQ's forking Worker (webhooks and housekeeping load no models, and fork isolates them).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

MODEL_QUEUES = {"analysis", "gpu"}


class Command(BaseCommand):
    help = "Run an RQ worker for one queue (analysis, gpu or default)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("queue", choices=settings.QUEUE_NAMES)
        parser.add_argument("--burst", action="store_true", help="Exit when the queue is empty.")
        parser.add_argument("--name", default=None, help="Worker name (default: RQ's own).")
        parser.add_argument("--with-scheduler", action="store_true")

    def handle(
        self, *args, queue: str, burst: bool, name: str | None, with_scheduler: bool, **options
    ):
        if settings.QUEUE_MODE != "rq":
            raise CommandError("Workers need REDIS_URL; without it jobs run in-process.")
        from rq.worker import Worker

        from core.queues import get_queue, get_redis
        from generation.workers import ModelKeepingWorker

        worker_class = ModelKeepingWorker if queue in MODEL_QUEUES else Worker
        worker = worker_class([get_queue(queue)], connection=get_redis(), name=name)
        self.stdout.write(f"{worker_class.__name__} {worker.name} serving queue {queue!r}")
        worker.work(burst=burst, with_scheduler=with_scheduler, logging_level="INFO")
