"""The shoot state machine: CAS, attempt guards, the audit trail of a whole path.

The table itself (every move allowed and refused) is tested in tests/test_state_machines.py.
"""

from __future__ import annotations

import itertools
import threading

import pytest
from django.db import connection, transaction

from core.transitions import TransitionConflict
from seller.models import Shoot, ShootEvent, ShootStatus
from seller.services import (
    SHOOTS,
    TRANSITIONS,
    shoot_confirm_mask,
    shoot_fail_analysis,
    shoot_finish_analysis,
    shoot_start_analysis,
    transition,
)
from tests.factories import UserFactory, shoot_in_status

pytestmark = pytest.mark.django_db


def test_every_status_is_reachable_and_every_non_final_status_has_a_way_out():
    statuses = set(ShootStatus.values)
    assert statuses - {rule.target for rule in TRANSITIONS.values()} == {"uploaded"}
    for status in statuses - {"published"}:
        assert SHOOTS.allowed_actions(status), status


def test_stale_caller_gets_conflict_not_overwrite():
    shoot = shoot_in_status(ShootStatus.MASK_REVIEW)
    stale = Shoot.objects.get(pk=shoot.pk)
    shoot_confirm_mask(shoot=shoot)
    with pytest.raises(TransitionConflict):
        shoot_confirm_mask(shoot=stale)
    assert ShootEvent.objects.filter(shoot=shoot).count() == 1


def test_analysis_result_from_a_superseded_attempt_is_refused(redis_conn):
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    assert shoot.analysis_attempts == 1
    with pytest.raises(TransitionConflict):
        shoot_finish_analysis(shoot=shoot, attempt=0)
    shoot = shoot_finish_analysis(shoot=shoot, attempt=1)
    assert shoot.status == ShootStatus.MASK_REVIEW


def test_failed_analysis_records_error_for_the_seller(redis_conn):
    shoot = shoot_start_analysis(shoot=shoot_in_status(ShootStatus.UPLOADED))
    shoot = shoot_fail_analysis(shoot=shoot, error="No garment found.", attempt=1)
    assert shoot.status == ShootStatus.ANALYSIS_FAILED
    assert shoot.last_error == "No garment found."


def test_audit_trail_records_the_whole_happy_path_in_order(redis_conn):
    seller_user = UserFactory()
    shoot = shoot_in_status(ShootStatus.UPLOADED)
    path = [
        "start_analysis",
        "finish_analysis",
        "correct_mask",
        "confirm_mask",
        "start_generation",
        "finish_generation",
        "submit_to_qa",
        "return_to_seller",
        "submit_to_qa",
        "approve",
        "publish",
    ]
    for action in path:
        shoot = transition(shoot, action, actor=seller_user)
    trail = list(ShootEvent.objects.filter(shoot=shoot).values_list("from_status", "to_status"))
    assert trail[0] == ("uploaded", "analyzing")
    assert trail[-1] == ("approved", "published")
    assert len(trail) == len(path)
    assert all(prev[1] == nxt[0] for prev, nxt in itertools.pairwise(trail))


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_transitions_exactly_one_wins():
    """Two threads = two PostgreSQL connections racing on one row."""
    assert connection.vendor == "postgresql"
    shoot = shoot_in_status(ShootStatus.MASK_REVIEW)
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def confirm() -> None:
        from django.db import connection as thread_connection

        mine = Shoot.objects.get(pk=shoot.pk)  # both read mask_review
        barrier.wait()
        try:
            with transaction.atomic():
                shoot_confirm_mask(shoot=mine)
            outcomes.append("won")
        except TransitionConflict:
            outcomes.append("conflict")
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=confirm) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["conflict", "won"]
    assert ShootEvent.objects.filter(shoot=shoot).count() == 1
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.FACE_SELECTION
