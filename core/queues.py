"""Job queues: ``analysis`` (CPU), ``gpu`` (generation) and ``default`` (webhooks, housekeeping).

Every job is enqueued *after* the surrounding transaction commits, so a worker never reads a row
that is not there yet, and a rolled-back transaction enqueues nothing. Jobs get deterministic ids
(``shoot-12-analysis-1``) and are enqueued with ``unique=True``: enqueueing the same work twice is a
no-op instead of a duplicate run.

Three modes (``settings.QUEUE_MODE``):

- ``rq``: real Redis queues served by ``manage.py run_worker`` processes (production, tests).
- ``thread``: no Redis; one background thread per queue in this process (the embedded default for
  ``./dev run``). Work survives nothing: the reconciler re-enqueues from the database on restart.
- ``sync``: the job runs right after commit in the caller's thread (scripts and some tests).

The database is the source of truth. If Redis is down at commit time the enqueue is logged and
dropped; the reconciler finds the shoot without a live job and enqueues it again.
"""

from __future__ import annotations

import logging
import queue as stdlib_queue
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)

ANALYSIS = "analysis"
GPU = "gpu"
DEFAULT = "default"


def enqueue_on_commit(queue_name: str, func_path: str, *args: Any, job_id: str) -> None:
    """Enqueue ``func_path(*args)`` on ``queue_name`` once the current transaction commits.

    ``func_path`` is a dotted path so the web process never imports heavy inference modules.
    """
    if queue_name not in settings.QUEUE_NAMES:
        raise ValueError(f"unknown queue {queue_name!r}")

    def enqueue_after_commit() -> None:
        # A broken Redis at commit time must not turn a committed request into an error: the
        # shoot is saved, and the reconciler recovers the lost job from the database.
        try:
            enqueue_now(queue_name, func_path, args, job_id)
        except Exception:
            log.exception("could not enqueue %s; the reconciler will retry it", job_id)

    transaction.on_commit(enqueue_after_commit)


def enqueue_now(queue_name: str, func_path: str, args: tuple, job_id: str) -> None:
    mode = settings.QUEUE_MODE
    if mode == "rq":
        _enqueue_rq(queue_name, func_path, args, job_id)
    elif mode == "thread":
        _thread_runner(queue_name).submit(func_path, args, job_id)
    elif mode == "sync":
        _run_job(func_path, args, job_id)
    else:
        raise ValueError(f"unknown QUEUE_MODE {mode!r}")


def _enqueue_rq(queue_name: str, func_path: str, args: tuple, job_id: str) -> None:
    from rq.exceptions import DuplicateJobError

    queue = get_queue(queue_name)
    try:
        queue.enqueue_call(func_path, args=args, job_id=job_id, unique=True)
    except DuplicateJobError:
        # Same deterministic id already queued or running: the work is already on its way.
        log.info("job %s already enqueued; not enqueued twice", job_id)


def get_queue(queue_name: str):
    import django_rq

    # commit_mode="auto": we already waited for the commit ourselves.
    return django_rq.get_queue(queue_name, commit_mode="auto")


def get_redis():
    import django_rq

    return django_rq.get_connection(ANALYSIS)


def fetch_job(job_id: str):
    """The RQ job with this id, or None when Redis no longer has it."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job

    try:
        return Job.fetch(job_id, connection=get_redis())
    except NoSuchJobError:
        return None


def _run_job(func_path: str, args: tuple, job_id: str) -> None:
    log.info("running job %s in process", job_id)
    func: Callable[..., Any] = import_string(func_path)
    func(*args)


class _ThreadRunner:
    """One daemon thread draining one queue, like a single RQ worker would."""

    def __init__(self, name: str) -> None:
        self._jobs: stdlib_queue.Queue[tuple[str, tuple, str]] = stdlib_queue.Queue()
        self._pending: set[str] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name=f"queue-{name}", daemon=True)
        self._thread.start()

    def submit(self, func_path: str, args: tuple, job_id: str) -> None:
        with self._lock:
            if job_id in self._pending:
                return
            self._pending.add(job_id)
        self._jobs.put((func_path, args, job_id))

    def is_pending(self, job_id: str) -> bool:
        with self._lock:
            return job_id in self._pending

    def _loop(self) -> None:
        while True:
            func_path, args, job_id = self._jobs.get()
            try:
                close_old_connections()
                _run_job(func_path, args, job_id)
            except Exception:
                log.exception("in-process job %s failed", job_id)
            finally:
                close_old_connections()
                with self._lock:
                    self._pending.discard(job_id)


_runners: dict[str, _ThreadRunner] = {}
_runners_lock = threading.Lock()


def _thread_runner(queue_name: str) -> _ThreadRunner:
    with _runners_lock:
        if queue_name not in _runners:
            _runners[queue_name] = _ThreadRunner(queue_name)
        return _runners[queue_name]


def thread_job_pending(job_id: str) -> bool:
    return any(runner.is_pending(job_id) for runner in _runners.values())


def renew_attempt(row, *, attempts: str, queued_at: str, **still) -> bool:
    """Give ``row`` a new attempt of its job (the reconciler, after its job was lost).

    A compare-and-swap on the attempt counter the caller saw (and ``still``, e.g. that the row
    is still pending): if a worker finished the job meanwhile, or another reconciler got there
    first, nothing changes and it returns False. On success the row is refreshed, so the caller
    can enqueue under the new job id.
    """
    current = getattr(row, attempts)
    renewed = (
        type(row)
        .objects.filter(pk=row.pk, **{attempts: current}, **still)
        .update(**{attempts: current + 1, queued_at: timezone.now()})
    )
    if renewed:
        row.refresh_from_db()
    return bool(renewed)
