"""``/healthz``: is this instance able to do its work? JSON for load balancers and operators."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

log = logging.getLogger(__name__)


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        result = {"ok": True, **(check() or {})}
    except Exception as exc:  # the report must show every failure, not stop at the first
        log.warning("health check failed: %s", exc)
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {"vendor": connection.vendor}


def check_redis() -> dict:
    if settings.QUEUE_MODE != "rq":
        return {"mode": settings.QUEUE_MODE, "detail": "no Redis configured; jobs run in-process"}
    from core.queues import get_redis

    get_redis().ping()
    return {"mode": "rq"}


def check_workers() -> dict:
    if settings.QUEUE_MODE != "rq":
        return {
            "mode": settings.QUEUE_MODE,
            "queues": {name: "in-process" for name in settings.QUEUE_NAMES},
        }
    from rq.worker import Worker

    from core.queues import get_queue, get_redis

    workers = Worker.all(connection=get_redis())
    per_queue = {}
    for name in settings.QUEUE_NAMES:
        serving = [w for w in workers if name in w.queue_names()]
        per_queue[name] = {"workers": len(serving), "queued": get_queue(name).count}
    return {"queues": per_queue}


def check_models() -> dict:
    from generation.model_status import model_sets_status

    return {"root": str(settings.MODEL_ROOT), "sets": model_sets_status()}


@never_cache
@require_GET
def healthz(request):
    checks = {
        "database": _timed(check_database),
        "redis": _timed(check_redis),
        "workers": _timed(check_workers),
        "models": _timed(check_models),
    }
    # Only the database and the queue broker make the instance unusable; missing workers or
    # models degrade it (jobs wait) and are reported without failing the probe.
    healthy = checks["database"]["ok"] and checks["redis"]["ok"]
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": checks}, status=200 if healthy else 503
    )
