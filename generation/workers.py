"""RQ worker classes.

``ModelKeepingWorker`` runs every job in the worker's own process (no fork per job), so a model
loaded by the first job stays in ``generation.inference.cache.models`` for the next ones; CUDA does
not survive fork anyway. Because the job runs in the main thread, a side thread keeps the worker
and job heartbeats going, so the reconciler can tell a long job from a dead worker.
"""

from __future__ import annotations

import json
import logging
import threading

from django.db import close_old_connections
from rq.utils import now
from rq.worker import SimpleWorker

from generation.inference.cache import models

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10
MODEL_STATS_KEY = "studio:worker-models:{name}"


class ModelKeepingWorker(SimpleWorker):
    def execute_job(self, job, queue):
        # What Django does around every request: a long-lived worker otherwise keeps using the
        # connection it opened for its first job, and after a PostgreSQL restart every later
        # job fails on that dead connection. This drops connections that errored or outlived
        # CONN_MAX_AGE, and re-arms CONN_HEALTH_CHECKS so the job's first query checks it.
        close_old_connections()
        stop = threading.Event()
        beat = threading.Thread(target=self._keep_beating, args=(job, stop), daemon=True)
        beat.start()
        try:
            return super().execute_job(job, queue)
        finally:
            stop.set()
            beat.join(timeout=5)
            close_old_connections()
            self.publish_model_stats()

    def _keep_beating(self, job, stop: threading.Event) -> None:
        while not stop.wait(HEARTBEAT_SECONDS):
            try:
                self.heartbeat()
                job.heartbeat(now(), ttl=HEARTBEAT_SECONDS * 6, xx=True)
            except Exception:  # a Redis blip must not kill the job; the next beat retries
                log.warning("heartbeat failed", exc_info=True)

    def publish_model_stats(self) -> None:
        """Record how many times each model was loaded in this process (for tests and bench)."""
        stats = models.stats()
        key = MODEL_STATS_KEY.format(name=self.name)
        try:
            self.connection.set(key, json.dumps(stats), ex=24 * 3600)
        except Exception:
            log.warning("could not publish model stats", exc_info=True)
        log.info("worker %s model loads so far: %s", self.name, stats)


def read_model_stats(connection, worker_name: str) -> dict[str, int]:
    raw = connection.get(MODEL_STATS_KEY.format(name=worker_name))
    return json.loads(raw) if raw else {}
