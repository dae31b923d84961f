"""Webhook outbox and delivery against a real local HTTP receiver (a thread on 127.0.0.1)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import transaction
from django.utils import timezone

from catalog import webhooks
from catalog.models import (
    CatalogClient,
    CatalogEvent,
    EventType,
    WebhookAttempt,
    WebhookDelivery,
)
from catalog.services import webhook_delivery_retry
from tests.conftest import REPO, wait_for, worker_env

from .conftest import approved_shoot

D = WebhookDelivery.Status


class Receiver:
    """A webhook endpoint that answers with a scripted list of status codes (then 200)."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = list(codes)
        self.calls: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.end_headers()
                self.wfile.write(b"ok" if code == 200 else b"try later")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/studio"

    def successes(self) -> list[dict]:
        # calls are answered in order: the ones after the scripted failures succeeded
        return self.calls[self.failures :]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_factory():
    made: list[Receiver] = []

    def make(codes: list[int]) -> Receiver:
        receiver = Receiver(codes)
        receiver.failures = len([c for c in codes if c != 200])
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


def _client(url: str) -> CatalogClient:
    return CatalogClient.objects.create(name=f"hook-{url[-20:]}", all_sellers=True, webhook_url=url)


def _verified(call: dict, secret: str) -> bool:
    return webhooks.verify_signature(
        secret=secret, header=call["headers"][webhooks.SIGNATURE_HEADER], body=call["body"]
    )


# --- signing -------------------------------------------------------------------------------------


def test_signature_round_trip_and_tampering():
    body = b'{"id":1}'
    header = webhooks.sign(secret="s3cret", body=body, timestamp=int(time.time()))
    assert webhooks.verify_signature(secret="s3cret", header=header, body=body)
    assert not webhooks.verify_signature(secret="other", header=header, body=body)
    assert not webhooks.verify_signature(secret="s3cret", header=header, body=b'{"id":2}')
    assert not webhooks.verify_signature(secret="s3cret", header="garbage", body=body)
    old = webhooks.sign(secret="s3cret", body=body, timestamp=int(time.time()) - 3600)
    assert not webhooks.verify_signature(secret="s3cret", header=old, body=body)


def test_backoff_doubles_and_is_capped(settings):
    settings.WEBHOOK_BACKOFF_BASE = 30
    settings.WEBHOOK_BACKOFF_MAX = 100
    assert [webhooks.backoff_seconds(n) for n in (1, 2, 3, 4)] == [30, 60, 100, 100]


# --- outbox ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_outbox_rows_are_written_with_the_approval_or_not_at_all():
    client = _client("http://127.0.0.1:9/none")
    with pytest.raises(RuntimeError), transaction.atomic():
        approved_shoot(1)
        assert WebhookDelivery.objects.filter(client=client).count() == 1
        raise RuntimeError("the request failed after approving")
    assert not CatalogEvent.objects.exists()
    assert not WebhookDelivery.objects.exists()


@pytest.mark.django_db
def test_only_subscribed_clients_of_that_seller_get_deliveries():
    other_sellers = CatalogClient.objects.create(name="other", webhook_url="http://x.test/h")
    everything = CatalogClient.objects.create(
        name="all",
        all_sellers=True,
        webhook_url="http://x.test/h",
        webhook_events=list(EventType.values),
    )
    no_url = CatalogClient.objects.create(name="pull-only", all_sellers=True)
    approved_shoot(1)
    kinds = set(
        WebhookDelivery.objects.filter(client=everything).values_list("event__type", flat=True)
    )
    assert kinds == {EventType.ASSET_APPROVED, EventType.SHOOT_APPROVED}
    assert not WebhookDelivery.objects.filter(client__in=[other_sellers, no_url]).exists()


# --- delivery (in-process) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_failing_twice_then_succeeding_delivers_exactly_once_in_process(receiver_factory, settings):
    """Sync queue mode: each attempt is driven by the sweep, like the cron safety net does."""
    settings.QUEUE_MODE = "sync"
    settings.WEBHOOK_BACKOFF_BASE = 0.05
    receiver = receiver_factory([500, 503])
    client = _client(receiver.url)
    approved_shoot(1)  # delivers attempt 1 right after commit (sync mode)
    delivery = WebhookDelivery.objects.get(client=client)
    for _ in range(10):
        delivery.refresh_from_db()
        if delivery.status == D.DELIVERED:
            break
        time.sleep(0.06)
        webhooks.sweep()
    assert delivery.status == D.DELIVERED and delivery.attempts == 3
    assert [a.status_code for a in delivery.tries.all()] == [500, 503, 200]
    assert len(receiver.successes()) == 1
    assert _verified(receiver.successes()[0], client.webhook_secret)
    webhooks.sweep()  # nothing due: no second delivery
    assert len(receiver.calls) == 3


@pytest.mark.django_db
def test_an_unreachable_receiver_keeps_the_event_and_gives_up_only_after_max_attempts(settings):
    settings.QUEUE_MODE = "sync"
    settings.WEBHOOK_MAX_ATTEMPTS = 2
    settings.WEBHOOK_TIMEOUT = 0.5
    client = _client("http://127.0.0.1:9/closed-port")
    _shoot, _ = approved_shoot(1)
    delivery = WebhookDelivery.objects.get(client=client)
    assert webhooks.deliver(delivery_id=delivery.pk) == D.PENDING
    assert webhooks.deliver(delivery_id=delivery.pk) is None  # not due yet (backoff)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    assert webhooks.deliver(delivery_id=delivery.pk) == D.FAILED
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and "Error" in delivery.last_error
    assert WebhookAttempt.objects.filter(delivery=delivery).count() == 2
    # the admin can send it again; the event itself was never lost
    assert webhook_delivery_retry(delivery=delivery)
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == D.PENDING


@pytest.mark.django_db
def test_a_worker_that_died_mid_request_is_recovered_by_the_sweep(settings):
    settings.QUEUE_MODE = "sync"
    client = _client("http://127.0.0.1:9/x")
    settings.QUEUE_MODE = "rq"  # keep the first attempt from running in-process
    approved_shoot(1)
    settings.QUEUE_MODE = "sync"
    delivery = WebhookDelivery.objects.get(client=client)
    claimed = webhooks.claim(delivery_id=delivery.pk)
    assert claimed.status == D.SENDING
    # the worker is SIGKILLed here; its lease runs out
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        lease_until=timezone.now() - timedelta(seconds=1)
    )
    settings.WEBHOOK_TIMEOUT = 0.5
    assert webhooks.sweep()["recovered"] == 1
    delivery.refresh_from_db()
    assert delivery.attempts == 2  # the sweep enqueued (sync: ran) the next attempt
    # the dead worker's late result cannot overwrite the newer attempt
    late = webhooks.HttpOutcome(True, 200, "", "", 5)
    assert webhooks.finish(delivery=claimed, outcome=late) == D.DELIVERED
    assert WebhookDelivery.objects.get(pk=delivery.pk).status != D.DELIVERED


# --- delivery by a real worker process ----------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_receiver_failing_twice_then_succeeding_gets_it_once_from_a_real_worker(
    receiver_factory, redis_conn, tmp_path
):
    """Real default worker with RQ's scheduler: retries are scheduled with backoff."""
    receiver = receiver_factory([500, 500])
    client = _client(receiver.url)
    _shoot, assets = approved_shoot(1)
    delivery = WebhookDelivery.objects.get(client=client)
    assert delivery.event.type == EventType.SHOOT_APPROVED

    env = worker_env(WEBHOOK_BACKOFF_BASE="0.5")
    log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", "default", "--with-scheduler"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        try:
            wait_for(
                lambda: WebhookDelivery.objects.get(pk=delivery.pk).status == D.DELIVERED,
                timeout=60,
                message="delivery",
            )
        except AssertionError:
            log.flush()
            raise AssertionError((tmp_path / "worker.log").read_text()) from None
        time.sleep(1.5)  # a duplicate would arrive now if retries were scheduled twice
    finally:
        worker.terminate()
        worker.wait(timeout=20)
        log.close()
    delivery.refresh_from_db()
    attempts = list(delivery.tries.values_list("number", "status_code", "ok"))
    assert attempts == [(1, 500, False), (2, 500, False), (3, 200, True)], (
        tmp_path / "worker.log"
    ).read_text()
    assert delivery.delivered_at is not None
    successes = receiver.successes()
    assert len(successes) == 1 and len(receiver.calls) == 3
    call = successes[0]
    assert _verified(call, client.webhook_secret)
    body = json.loads(call["body"])
    assert body["id"] == delivery.event_id and body["type"] == "shoot.approved"
    assert body["data"]["asset_ids"] == [assets[0].pk]
    assert call["headers"]["X-Studio-Event-Id"] == str(delivery.event_id)
    # every attempt carried the same event id, so a receiver can deduplicate
    assert {c["headers"]["X-Studio-Event-Id"] for c in receiver.calls} == {str(delivery.event_id)}


@pytest.mark.django_db
def test_sweep_command_and_cron_job(settings, capsys):
    from django.core.management import call_command

    from catalog.jobs import sweep_webhooks

    settings.QUEUE_MODE = "sync"
    settings.WEBHOOK_TIMEOUT = 0.5
    client = _client("http://127.0.0.1:9/closed")
    settings.QUEUE_MODE = "rq"  # the first attempt is "lost" (never runs)
    approved_shoot(1)
    settings.QUEUE_MODE = "sync"
    call_command("deliver_webhooks")
    assert "'enqueued': 1" in capsys.readouterr().out
    delivery = WebhookDelivery.objects.get(client=client)
    assert delivery.attempts == 1 and delivery.status == D.PENDING
    assert sweep_webhooks() == {"recovered": 0, "enqueued": 0}  # next attempt not due yet
