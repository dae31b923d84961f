"""RQ entry points of the face library (thin: they call a service)."""

from __future__ import annotations


def retire_expired_consents() -> list[int]:
    """Periodic (config/cron.py): retire active faces whose consent ended."""
    from facelibrary.services import retire_expired_consents as retire

    return retire()
