"""Every state machine (shoot, asset, face) against a table written down here, from the docs.

The expectation tables are written by hand in another layout than the product's (by source
status: ``status: action -> target, ...``): a wrong, missing or extra move in a product table
fails one of these tests.
Every allowed move changes the status and writes exactly one event with the actor and note;
every refused one changes nothing and writes none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.db import models

from core.transitions import StateMachine, TransitionNotAllowed
from facelibrary.models import Face
from facelibrary.services import FACES
from generation.asset_status import ASSETS
from seller.services import SHOOTS
from tests.facelibrary.factories import DraftFaceFactory
from tests.factories import UserFactory, shoot_in_status
from tests.qa.factories import shoot_with_assets

pytestmark = pytest.mark.django_db

Expected = dict[str, tuple[set[str], str]]


def read(text: str) -> Expected:
    """``status: action -> target, action -> target`` per line (a status may take two lines)."""
    expected: Expected = {}
    for line in filter(None, map(str.strip, text.splitlines())):
        source, moves = line.split(":")
        for move in filter(None, map(str.strip, moves.split(","))):
            action, target = (part.strip() for part in move.split("->"))
            sources, _ = expected.setdefault(action, (set(), target))
            assert expected[action][1] == target, f"{action} has two targets"
            sources.add(source.strip())
    return expected


def _asset_in(status: str) -> models.Model:
    _shoot, (asset,) = shoot_with_assets(1, asset_status=status)
    return asset


@dataclass(frozen=True)
class Case:
    machine: StateMachine
    expected: Expected
    make: Callable[[str], models.Model]

    @property
    def statuses(self) -> list[str]:
        return sorted({s for sources, t in self.expected.values() for s in (*sources, t)})


#: the tables, from docs/architecture.md (shoots), docs/qa.md (assets), docs/face-library.md
TABLES = {
    "shoot": """
        uploaded: start_analysis -> analyzing
        analyzing: finish_analysis -> mask_review, fail_analysis -> analysis_failed
        analyzing: reenqueue_analysis -> analyzing
        analysis_failed: retry_analysis -> analyzing
        mask_review: rerun_analysis -> analyzing, correct_mask -> mask_review
        mask_review: confirm_mask -> face_selection
        face_selection: start_generation -> generating
        generating: finish_generation -> seller_review, fail_generation -> generation_failed
        seller_review: start_generation -> generating, submit_to_qa -> qa_review
        generation_failed: retry_generation -> generating
        qa_review: approve -> approved, return_to_seller -> seller_review
        approved: publish -> published
    """,
    "asset": """
        seller_approved: qa_approve -> qa_approved, qa_reject -> qa_rejected
        generated: seller_approve -> seller_approved, seller_reject -> seller_rejected
        seller_rejected: seller_approve -> seller_approved
        qa_approved: publish -> published
        seller_approved: seller_reject -> seller_rejected
    """,
    "face": """
        draft: activate -> active, retire -> retired
        retired: activate -> active
        active: retire -> retired
    """,
}
MAKERS = {
    "shoot": (SHOOTS, shoot_in_status),
    "asset": (ASSETS, _asset_in),
    "face": (FACES, lambda status: DraftFaceFactory(status=status)),
}
CASES = {kind: Case(machine, read(TABLES[kind]), make) for kind, (machine, make) in MAKERS.items()}
ALLOWED = [
    (kind, action, source)
    for kind, case in CASES.items()
    for action, (sources, _) in case.expected.items()
    for source in sorted(sources)
]
REFUSED = [
    (kind, action, status)
    for kind, case in CASES.items()
    for action, (sources, _) in case.expected.items()
    for status in case.statuses
    if status not in sources
]


@pytest.mark.parametrize("kind", CASES)
def test_the_product_table_is_exactly_the_expected_one(kind):
    case = CASES[kind]
    status_field = case.machine.model._meta.get_field("status")
    assert {value for value, _ in status_field.choices} == set(case.statuses)
    actual = {name: (set(m.sources), m.target) for name, m in case.machine.transitions.items()}
    assert actual == case.expected


@pytest.mark.parametrize(("kind", "action", "source"), ALLOWED)
def test_an_allowed_move_changes_the_status_and_writes_one_event(kind, action, source):
    case = CASES[kind]
    actor = UserFactory()
    row = case.machine.apply(case.make(source), action, actor=actor, note="why")
    target = case.expected[action][1]
    assert type(row).objects.get(pk=row.pk).status == target
    events = case.machine.event_model.objects.filter(**{case.machine.subject: row})
    assert [(e.from_status, e.to_status, e.actor, e.note) for e in events] == [
        (source, target, actor, "why")
    ]


@pytest.mark.parametrize(("kind", "action", "status"), REFUSED)
def test_a_refused_move_changes_nothing(kind, action, status):
    case = CASES[kind]
    row = case.make(status)
    with pytest.raises(TransitionNotAllowed, match=f"{case.machine.noun} that is"):
        case.machine.apply(row, action, actor=UserFactory())
    assert type(row).objects.get(pk=row.pk).status == status
    assert not case.machine.event_model.objects.filter(**{case.machine.subject: row}).exists()


def test_faces_start_as_drafts():
    assert Face().status == "draft"
