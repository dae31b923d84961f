"""RQ job entry points. Thin on purpose: take ids, call a service or runner, nothing else.

They are referenced by dotted path (``generation.jobs.analyze_shoot``) so the web process never
imports the inference stack.
"""

from __future__ import annotations


def analyze_shoot(shoot_id: int, attempt: int) -> None:
    from seller.analysis import run_analysis

    run_analysis(shoot_id=shoot_id, attempt=attempt)


def generate_image(job_id: int, attempt: int) -> None:
    from generation.runner import run_generation_job

    run_generation_job(job_id=job_id, attempt=attempt)


def reconcile() -> dict:
    from generation.reconcile import reconcile as run_reconcile

    return run_reconcile().as_dict()
