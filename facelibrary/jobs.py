"""RQ entry points of the face library (thin: they call a service).

Referenced by dotted path, so the web process that enqueues them never imports what they run.
"""

from __future__ import annotations


def retire_expired_consents() -> list[int]:
    """Periodic (config/cron.py): retire active faces whose consent ended."""
    from facelibrary.services import retire_expired_consents as retire

    return retire()


def check_reference(reference_id: int) -> None:
    """``analysis`` queue: run the quality gate on a reference photo the curator uploaded."""
    from facelibrary.services import reference_check

    reference_check(reference_id=reference_id)
