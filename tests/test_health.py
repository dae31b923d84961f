import pytest

pytestmark = pytest.mark.django_db


def test_healthz_reports_database_redis_workers_and_models(client, redis_conn):
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"]["ok"] and checks["database"]["vendor"] == "postgresql"
    assert checks["redis"]["ok"] and checks["redis"]["mode"] == "rq"
    assert set(checks["workers"]["queues"]) == {"analysis", "gpu", "default"}
    assert "sets" in checks["models"]


def test_healthz_is_503_when_redis_is_unreachable(client, settings):
    settings.RQ_QUEUES = {
        name: {**conf, "URL": "redis://127.0.0.1:1/1"} for name, conf in settings.RQ_QUEUES.items()
    }
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["checks"]["redis"]["ok"] is False
