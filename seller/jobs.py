"""RQ entry points of the analysis queue. Thin on purpose: they take ids and call the job body.

Referenced by dotted path (``seller.jobs.analyze_shoot``, ``seller.jobs.correct_mask``) so the
web process that enqueues them never imports the inference stack.
"""

from __future__ import annotations


def analyze_shoot(shoot_id: int, attempt: int) -> None:
    from seller.analysis import run_analysis

    run_analysis(shoot_id=shoot_id, attempt=attempt)


def correct_mask(correction_id: int) -> None:
    from seller.analysis import run_mask_correction

    run_mask_correction(correction_id=correction_id)
