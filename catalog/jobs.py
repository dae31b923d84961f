"""RQ entry points for the catalog (default queue). Thin: take ids, call a service."""

from __future__ import annotations


def deliver_webhook(delivery_id: int) -> str | None:
    from catalog.webhooks import deliver

    return deliver(delivery_id=delivery_id)


def sweep_webhooks() -> dict[str, int]:
    """Periodic: recover stuck deliveries and enqueue due ones (rqcron, every minute)."""
    from catalog.webhooks import sweep

    return sweep()
