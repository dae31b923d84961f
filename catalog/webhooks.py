"""Webhook delivery from the outbox: sign, POST, record every attempt, retry with backoff.

Lifecycle of a ``WebhookDelivery`` (all changes are compare-and-swap UPDATEs):

    pending --claim--> sending --2xx--> delivered
                          |--error--> pending (next_attempt_at = now + backoff)
                          |--error, attempts exhausted--> failed  (kept; admin can retry)

A claim leases the row for ``WEBHOOK_LEASE_SECONDS``; a worker that dies mid-request leaves a
``sending`` row whose lease expires, and ``sweep`` puts it back to pending. Retries are scheduled
with RQ's scheduler (the default worker runs ``--with-scheduler``); ``sweep`` (management
command ``deliver_webhooks`` or the ``catalog.jobs.sweep_webhooks`` cron job) also enqueues any
due delivery, so a lost Redis job only delays an event. Delivery is at least once: receivers
deduplicate on ``X-Studio-Event-Id``.

Signature: ``X-Studio-Signature: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import math
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from datetime import timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core.queues import DEFAULT, enqueue_now, enqueue_on_commit, get_queue

from .models import CatalogEvent, WebhookAttempt, WebhookDelivery

log = logging.getLogger(__name__)
D = WebhookDelivery.Status

SIGNATURE_HEADER = "X-Studio-Signature"
DELIVER_JOB = "catalog.jobs.deliver_webhook"


# --- signing ---------------------------------------------------------------------------------


def sign(*, secret: str, body: bytes, timestamp: int) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify_signature(
    *, secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """Receiver side: check the HMAC and that the timestamp is recent (replay protection)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
        given = parts["v1"]
    except (KeyError, ValueError):
        return False
    if abs((now if now is not None else time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret=secret, body=body, timestamp=timestamp).split("v1=", 1)[1]
    return hmac.compare_digest(expected, given)


def event_body(event: CatalogEvent) -> bytes:
    document = {
        "id": event.pk,
        "type": event.type,
        "created_at": event.created_at,
        "data": event.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


# --- scheduling --------------------------------------------------------------------------------


def backoff_seconds(attempt: int) -> float:
    """Delay after failed attempt ``attempt`` (1-based): base * 2^(attempt-1), capped."""
    return min(settings.WEBHOOK_BACKOFF_BASE * 2 ** (attempt - 1), settings.WEBHOOK_BACKOFF_MAX)


def delivery_job_id(delivery_id: int, attempt: int, suffix: str = "") -> str:
    return f"webhook-{delivery_id}-{attempt}" + (f"-{suffix}" if suffix else "")


def enqueue_delivery(*, delivery_id: int, attempt: int, manual: bool = False) -> None:
    """Enqueue attempt ``attempt`` after commit (deterministic id: enqueueing twice is a no-op)."""
    suffix = f"manual{int(time.time())}" if manual else ""
    enqueue_on_commit(
        DEFAULT, DELIVER_JOB, delivery_id, job_id=delivery_job_id(delivery_id, attempt, suffix)
    )


def _schedule_retry(delivery_id: int, attempt: int, delay: float, suffix: str = "") -> None:
    """Run attempt ``attempt`` in ``delay`` seconds. If this is lost (no scheduler, Redis down,
    process exit), ``sweep`` still finds the row due in the database."""
    job_id = delivery_job_id(delivery_id, attempt, suffix)
    mode = settings.QUEUE_MODE
    try:
        if mode == "rq":
            from rq.exceptions import DuplicateJobError

            # RQ keeps scheduled times in whole seconds (truncated): round up and add a second
            # so the job never runs before the row is due
            seconds = math.ceil(delay) + 1
            with contextlib.suppress(DuplicateJobError):
                get_queue(DEFAULT).enqueue_in(
                    timedelta(seconds=seconds), DELIVER_JOB, delivery_id, job_id=job_id, unique=True
                )
        elif mode == "thread":
            timer = threading.Timer(
                delay, enqueue_now, args=(DEFAULT, DELIVER_JOB, (delivery_id,), job_id)
            )
            timer.daemon = True
            timer.start()
        # sync mode (scripts, some tests): the sweep delivers retries
    except Exception:
        log.exception("could not schedule %s; the sweep will pick it up", job_id)


# --- the delivery job ----------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpOutcome:
    """One POST's result; its fields are named after the WebhookAttempt columns that keep it."""

    ok: bool
    status_code: int | None
    error: str
    response_excerpt: str
    duration_ms: int


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> HttpOutcome:
    """POST with the standard library (no session, no retries of its own). 2xx is success."""
    started = time.perf_counter()
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310
    status: int | None = None
    error = excerpt = ""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = response.status
            excerpt = response.read(500).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        status = exc.code
        excerpt = exc.read(500).decode("utf-8", "replace") if exc.fp else ""
        error = f"HTTP {exc.code}"
    except Exception as exc:  # DNS, refused, TLS, timeout: all are "try again later"
        error = f"{type(exc).__name__}: {exc}"[:500]
    ok = status is not None and 200 <= status < 300
    return HttpOutcome(ok, status, error, excerpt, int((time.perf_counter() - started) * 1000))


def claim(*, delivery_id: int) -> WebhookDelivery | None:
    """pending and due -> sending, one more attempt. None: not due, taken, or already done."""
    now = timezone.now()
    lease = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, status=D.PENDING, next_attempt_at__lte=now
    ).update(status=D.SENDING, attempts=F("attempts") + 1, lease_until=lease)
    if not claimed:
        return None
    return WebhookDelivery.objects.select_related("event", "client").get(pk=delivery_id)


@transaction.atomic
def finish(*, delivery: WebhookDelivery, outcome: HttpOutcome) -> str:
    """Record the attempt and move the delivery on. Only the claim that owns this attempt
    number can finish it (a worker whose lease expired and was re-claimed changes nothing)."""
    attempt = delivery.attempts
    WebhookAttempt.objects.create(delivery=delivery, number=attempt, **asdict(outcome))
    mine = WebhookDelivery.objects.filter(pk=delivery.pk, status=D.SENDING, attempts=attempt)
    now = timezone.now()
    if outcome.ok:
        mine.update(status=D.DELIVERED, delivered_at=now, lease_until=None, last_error="")
        return D.DELIVERED
    error = outcome.error or f"HTTP {outcome.status_code}"
    if attempt >= settings.WEBHOOK_MAX_ATTEMPTS:
        mine.update(status=D.FAILED, lease_until=None, last_error=error)
        return D.FAILED
    delay = backoff_seconds(attempt)
    if mine.update(
        status=D.PENDING,
        lease_until=None,
        last_error=error,
        next_attempt_at=now + timedelta(seconds=delay),
    ):
        transaction.on_commit(lambda: _schedule_retry(delivery.pk, attempt + 1, delay))
    return D.PENDING


def deliver(*, delivery_id: int) -> str | None:
    """One attempt of one delivery (the default-queue job). Returns the new status or None."""
    delivery = claim(delivery_id=delivery_id)
    if delivery is None:
        _reschedule_if_early(delivery_id)
        return None
    body = event_body(delivery.event)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Studio-Webhooks/1",
        "X-Studio-Event-Id": str(delivery.event_id),
        "X-Studio-Event-Type": delivery.event.type,
        "X-Studio-Delivery-Attempt": str(delivery.attempts),
        SIGNATURE_HEADER: sign(
            secret=delivery.client.webhook_secret, body=body, timestamp=int(time.time())
        ),
    }
    # the HTTP call happens outside any transaction: a slow receiver holds no locks
    outcome = post(delivery.url, body, headers, settings.WEBHOOK_TIMEOUT)
    return finish(delivery=delivery, outcome=outcome)


def _reschedule_if_early(delivery_id: int) -> None:
    """A job that ran before its row was due (clock skew, a manual enqueue) must not drop the
    retry on the floor: schedule it again for when it is due."""
    row = (
        WebhookDelivery.objects.filter(pk=delivery_id, status=D.PENDING)
        .values("attempts", "next_attempt_at")
        .first()
    )
    if row is None:
        return  # delivered, failed, or taken by another worker: nothing to do
    wait = (row["next_attempt_at"] - timezone.now()).total_seconds()
    if wait > 0:
        _schedule_retry(delivery_id, row["attempts"] + 1, wait, suffix="early")


def sweep() -> dict[str, int]:
    """Recover expired leases and enqueue every due delivery (periodic safety net)."""
    now = timezone.now()
    recovered = WebhookDelivery.objects.filter(status=D.SENDING, lease_until__lt=now).update(
        status=D.PENDING, next_attempt_at=now, lease_until=None
    )
    due = list(
        WebhookDelivery.objects.filter(status=D.PENDING, next_attempt_at__lte=now).values_list(
            "pk", "attempts"
        )[:1000]
    )
    for pk, attempts in due:
        # its own id: the scheduled job of this attempt may still sit in Redis; whichever runs
        # first claims the row, the other finds nothing to do
        enqueue_now(DEFAULT, DELIVER_JOB, (pk,), delivery_job_id(pk, attempts + 1, "swept"))
    return {"recovered": recovered, "enqueued": len(due)}
