"""RQ job entry points. Thin on purpose: take ids, call a service or runner, nothing else.

They are referenced by dotted path (``generation.jobs.generate_image``) so the web process never
imports the inference stack.
"""

from __future__ import annotations


def generate_image(job_id: int, attempt: int) -> None:
    from generation.runner import run_generation_job

    run_generation_job(job_id=job_id, attempt=attempt)


def reconcile() -> dict:
    from generation.reconcile import reconcile as run_reconcile

    return run_reconcile().as_dict()
