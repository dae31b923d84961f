"""RQ entry points for QA (default queue). Thin: take ids, call a service."""

from __future__ import annotations


def run_asset_checks(asset_id: int) -> int:
    from qa.services import run_checks_for_asset

    return run_checks_for_asset(asset_id=asset_id)
