"""The asset state machine: its table, one ``AssetEvent`` per move with its actor, the pages that
show the events, and generation announcing stored assets without importing the apps above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from django.urls import reverse

from catalog.models import CatalogClient
from catalog.services import asset_publish
from core.transitions import TransitionConflict, TransitionNotAllowed
from generation.asset_status import transition
from generation.models import Asset, AssetEvent, GenerationJob, GenerationRun
from generation.services import JobOutcome, StoredAsset, generation_job_succeed
from generation.signals import assets_stored
from qa.models import QAReview, RejectionReason
from qa.services import asset_qa_approve, asset_qa_reject
from seller.models import Shoot, ShootStatus
from seller.review import asset_seller_approve, asset_seller_reject, shoot_send_to_qa
from tests.factories import SellerFactory, shoot_in_status
from tests.qa.factories import checks_passed, make_asset, reviewer, shoot_with_assets
from tests.test_state_machines import CASES

pytestmark = pytest.mark.django_db


def _asset(status: str) -> Asset:
    _shoot, (asset,) = shoot_with_assets(1, asset_status=status)
    return asset


def test_stale_caller_gets_a_conflict_and_no_event():
    asset = _asset("generated")
    stale = Asset.objects.get(pk=asset.pk)
    transition(asset, "seller_reject", actor=None)
    # ``stale`` still says generated: approving from there must not hide the rejection
    with pytest.raises(TransitionConflict):
        transition(stale, "seller_approve", actor=None)
    assert Asset.objects.get(pk=asset.pk).status == "seller_rejected"
    assert AssetEvent.objects.filter(asset=asset).count() == 1


# --- every move through the real services --------------------------------------------------------


def test_every_asset_transition_writes_one_event_with_its_actor():
    shoot, (a, b) = shoot_with_assets(2)
    seller = shoot.seller.user
    qa = reviewer()
    client = CatalogClient.objects.create(name="market", all_sellers=True)
    fresh = lambda asset: Asset.objects.get(pk=asset.pk)  # noqa: E731

    def step(decide, asset, expected):
        """``decide`` writes exactly one event: for ``asset``, with these values."""
        before = set(AssetEvent.objects.values_list("pk", flat=True))
        decide()
        new = list(AssetEvent.objects.exclude(pk__in=before))
        assert len(new) == 1, new
        event = new[0]
        got = (event.asset_id, event.from_status, event.to_status, event.actor, event.note)
        assert got == (asset.pk, *expected)
        assert fresh(asset).status == expected[1]

    # the seller's review, round 1
    step(lambda: asset_seller_approve(asset=fresh(a), actor=seller), a,
         ("generated", "seller_approved", seller, ""))  # fmt: skip
    step(lambda: asset_seller_reject(asset=fresh(a), actor=seller, reason=" too dark "), a,
         ("seller_approved", "seller_rejected", seller, "too dark"))  # fmt: skip
    step(lambda: asset_seller_approve(asset=fresh(a), actor=seller), a,
         ("seller_rejected", "seller_approved", seller, ""))  # fmt: skip
    step(lambda: asset_seller_reject(asset=fresh(b), actor=seller, reason="blurry"), b,
         ("generated", "seller_rejected", seller, "blurry"))  # fmt: skip
    step(lambda: asset_seller_approve(asset=fresh(b), actor=seller), b,
         ("seller_rejected", "seller_approved", seller, ""))  # fmt: skip
    shoot_send_to_qa(shoot=shoot, actor=seller)
    checks_passed(a, b)
    # QA, round 1: one approved, one rejected -> the shoot goes back to the seller
    step(lambda: asset_qa_approve(asset=fresh(a), reviewer=qa), a,
         ("seller_approved", "qa_approved", qa, ""))  # fmt: skip
    step(lambda: asset_qa_reject(asset=fresh(b), reviewer=qa, reason=RejectionReason.HANDS,
                                 comment="six fingers"), b,
         ("seller_approved", "qa_rejected", qa, "Hands: six fingers"))  # fmt: skip
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.SELLER_REVIEW
    # round 2 with a new result: all approved -> the shoot is approved
    c = make_asset(Shoot.objects.get(pk=shoot.pk))
    checks_passed(c)
    step(lambda: asset_seller_approve(asset=fresh(c), actor=seller), c,
         ("generated", "seller_approved", seller, ""))  # fmt: skip
    shoot_send_to_qa(shoot=Shoot.objects.get(pk=shoot.pk), actor=seller)
    step(lambda: asset_qa_approve(asset=fresh(c), reviewer=qa), c,
         ("seller_approved", "qa_approved", qa, ""))  # fmt: skip
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.APPROVED
    # publication by a catalog client: no user, the note names the client
    for asset in (a, c):
        step(lambda asset=asset: asset_publish(asset=fresh(asset), client=client), asset,
             ("qa_approved", "published", None, "Published by catalog client market"))  # fmt: skip
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.PUBLISHED
    # publishing again is idempotent: no second event
    step_count = AssetEvent.objects.count()
    asset_publish(asset=fresh(a), client=client)
    assert AssetEvent.objects.count() == step_count
    # every move of the table was walked from every source
    walked = set(AssetEvent.objects.values_list("from_status", "to_status"))
    expected = CASES["asset"].expected.values()
    assert walked == {(s, target) for sources, target in expected for s in sources}


def test_a_refused_decision_writes_no_event():
    shoot, (asset,) = shoot_with_assets(1, status=ShootStatus.GENERATING)
    with pytest.raises(TransitionNotAllowed):
        asset_seller_approve(asset=asset, actor=shoot.seller.user)
    assert not AssetEvent.objects.exists()


# --- the pages -----------------------------------------------------------------------------------


def _decided_asset(seller):
    """An asset the seller rejected, then approved, that QA then approved (the reviewer)."""
    shoot, (asset,) = shoot_with_assets(1, seller=seller)
    asset_seller_reject(asset=asset, actor=seller.user, reason="Collar looks odd")
    asset_seller_approve(asset=Asset.objects.get(pk=asset.pk), actor=seller.user)
    shoot_send_to_qa(shoot=shoot, actor=seller.user)
    checks_passed(asset)
    qa = reviewer(username="qa-ines")
    asset_qa_approve(asset=Asset.objects.get(pk=asset.pk), reviewer=qa)
    return shoot, asset, qa


def test_the_asset_page_lists_its_events(client):
    seller = SellerFactory()
    shoot, asset, _qa = _decided_asset(seller)
    client.force_login(seller.user)
    response = client.get(reverse("seller:asset", args=[shoot.pk, asset.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    timeline = page.split('aria-labelledby="asset-timeline-h"', 1)[1].split("</section>", 1)[0]
    items = timeline.split("<li>")[1:]
    # newest first, like the shoot's timeline
    assert [item.split("</div>", 1)[0].split(">")[-1] for item in items] == [
        "Approved by seller → Approved by QA",
        "Rejected by seller → Approved by seller",
        "Generated → Rejected by seller",
    ]
    assert "qa-ines" in items[0]
    assert "you" in items[1] and "you" in items[2]
    assert "Collar looks odd" in items[2]
    assert "<time datetime=" in items[0]


def test_the_asset_page_without_events_says_so(client):
    seller = SellerFactory()
    shoot, (asset,) = shoot_with_assets(1, seller=seller)
    client.force_login(seller.user)
    page = client.get(reverse("seller:asset", args=[shoot.pk, asset.pk])).content.decode()
    assert "Not reviewed yet." in page


def test_the_qa_review_page_shows_the_asset_history(client):
    seller = SellerFactory()
    _shoot, asset, qa = _decided_asset(seller)
    client.force_login(qa)
    review = QAReview.objects.get(asset=asset)
    page = client.get(reverse("admin:qa_qareview_change", args=[review.pk])).content.decode()
    history = page.split("History of this asset", 1)[1]
    assert history.count("<tr>") == 1 + 3  # header + three events
    assert "Collar looks odd" in history and seller.user.username in history
    assert "qa-ines" in history and "Approved by QA" in history


# --- generation announces stored assets; QA schedules its checks ---------------------------------


def test_stored_assets_are_announced_and_qa_schedules_their_checks(monkeypatch):
    scheduled: list[list[int]] = []
    monkeypatch.setattr(
        "qa.services.schedule_asset_checks", lambda *, asset_ids: scheduled.append(asset_ids)
    )
    heard: list[list[int]] = []

    def listen(sender, *, asset_ids, **kwargs):
        heard.append(list(asset_ids))

    assets_stored.connect(listen, dispatch_uid="test-listen")
    try:
        run = GenerationRun.objects.create(shoot=shoot_in_status(ShootStatus.GENERATING))
        job = GenerationJob.objects.create(
            run=run, seed=1, status=GenerationJob.Status.RUNNING, attempts=1
        )
        stored = StoredAsset(kind="image", name="a.png", width=8, height=8, checksum="0" * 64)
        assert generation_job_succeed(
            job=job, assets=[stored], outcome=JobOutcome(seconds_per_image=1.0)
        )
    finally:
        assets_stored.disconnect(dispatch_uid="test-listen")
    ids = [Asset.objects.get(job=job).pk]
    assert heard == [ids]
    assert scheduled == [ids]


FORBIDDEN_FOR_GENERATION = ("qa", "catalog", "seller.views", "seller.selectors", "seller.review")


def test_generation_imports_nothing_from_the_layers_above():
    root = Path(__file__).resolve().parents[2] / "generation"
    found = []
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_FOR_GENERATION):
                    found.append(f"{path.relative_to(root.parent)}:{node.lineno} {name}")
    assert not found
