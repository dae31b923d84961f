"""The QA gate: a failed, errored or not-yet-run automatic check stops an approval unless the
reviewer gives an override reason, which the asset's event keeps. Service, review page, bulk."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from generation.models import Asset, AssetEvent
from qa import checks
from qa.checks import CheckResult
from qa.models import AssetCheck, QAReview
from qa.models import CheckName as C
from qa.services import asset_qa_approve, record_check_results
from seller.models import Shoot, ShootStatus
from seller.review import asset_seller_approve, shoot_send_to_qa
from tests.qa.factories import reviewer, shoot_with_assets

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:qa_qareview_changelist")


def _in_qa(n: int = 1) -> tuple[Shoot, list[Asset]]:
    shoot, assets = shoot_with_assets(n)
    for asset in assets:
        asset_seller_approve(asset=asset, actor=shoot.seller.user)
    shoot_send_to_qa(shoot=shoot, actor=shoot.seller.user)
    return Shoot.objects.get(pk=shoot.pk), [Asset.objects.get(pk=a.pk) for a in assets]


def _record(asset: Asset, **verdicts: bool | None | Exception) -> None:
    """Record check results the way the checks job does; an exception value is a check that
    raised (run through the checks' own error handling)."""
    results = []
    for name, verdict in verdicts.items():
        if isinstance(verdict, Exception):
            results += checks._timed(lambda exc=verdict: _raise(exc), [name])
        else:
            results.append(CheckResult(name=name, score=0.5, passed=verdict))
    record_check_results(asset_id=asset.pk, results=results)


def _raise(exc: Exception):
    raise exc


def _unchanged(asset: Asset) -> None:
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.SELLER_APPROVED
    assert QAReview.objects.get(asset=asset).decision == QAReview.Decision.PENDING
    assert not AssetEvent.objects.filter(asset=asset, to_status="qa_approved").exists()


# --- the service -------------------------------------------------------------------------------


def _refused_then_approved_with_a_reason(asset, *, refusal: str, reason: str, note: str) -> None:
    """Without a reason approval is refused and changes nothing; with one, the event keeps it."""
    with pytest.raises(ValidationError, match=refusal):
        asset_qa_approve(asset=asset, reviewer=reviewer())
    _unchanged(asset)
    asset_qa_approve(asset=asset, reviewer=reviewer(), override_reason=reason)
    assert AssetEvent.objects.get(asset=asset, to_status="qa_approved").note == note


def test_a_failed_check_blocks_approval_without_a_reason():
    shoot, (asset,) = _in_qa()
    _record(asset, garment_ssim=False, sharpness=True)
    with pytest.raises(ValidationError, match="garment_ssim") as refused:
        asset_qa_approve(asset=asset, reviewer=reviewer())
    assert "failed" in str(refused.value) and "sharpness" not in str(refused.value)
    for blank in ("", "   "):
        with pytest.raises(ValidationError):
            asset_qa_approve(asset=asset, reviewer=reviewer(), override_reason=blank)
    _unchanged(asset)
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.QA_REVIEW


def test_with_a_reason_it_is_approved_and_the_event_keeps_the_reason():
    shoot, (asset,) = _in_qa()
    _record(asset, garment_ssim=False, garment_changed=True)
    qa = reviewer()
    approved = asset_qa_approve(
        asset=asset, reviewer=qa, override_reason=" SSIM dip is the JPEG edge, garment intact "
    )
    assert approved.status == Asset.Status.QA_APPROVED
    event = AssetEvent.objects.get(asset=asset, to_status="qa_approved")
    assert event.actor == qa
    assert event.note == (
        "Approved despite failed checks (garment_ssim): SSIM dip is the JPEG edge, garment intact"
    )
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.APPROVED


def test_an_errored_check_blocks_approval_the_same_way():
    _shoot, (asset,) = _in_qa()
    _record(asset, face_identity=RuntimeError("dlib model missing"), sharpness=True)
    check = AssetCheck.objects.get(asset=asset, name=C.FACE_IDENTITY)
    assert (check.errored, check.passed, check.verdict) == (True, None, "error")
    assert "dlib model missing" in check.details["error"]
    _refused_then_approved_with_a_reason(
        asset,
        refusal=r"error.*face_identity",
        reason="face checked by eye",
        note="Approved despite errored checks (face_identity): face checked by eye",
    )


def test_checks_not_run_yet_block_approval_unless_overridden():
    _shoot, (asset,) = _in_qa()
    _refused_then_approved_with_a_reason(
        asset,
        refusal="still running",
        reason="checks queue is down",
        note="Approved despite checks not run yet: checks queue is down",
    )


def test_passed_and_not_applicable_checks_do_not_need_a_reason():
    _shoot, (asset,) = _in_qa()
    _record(asset, garment_ssim=True, face_identity=None)
    asset_qa_approve(asset=asset, reviewer=reviewer(), override_reason="not needed")
    event = AssetEvent.objects.get(asset=asset, to_status="qa_approved")
    assert event.note == ""  # nothing was overridden


def test_a_successful_rerun_clears_the_error():
    _shoot, (asset,) = _in_qa()
    _record(asset, sharpness=OSError("disk"))
    _record(asset, sharpness=True)
    check = AssetCheck.objects.get(asset=asset)
    assert (check.errored, check.verdict) == (False, "pass")
    asset_qa_approve(asset=asset, reviewer=reviewer())
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.QA_APPROVED


# --- admin -------------------------------------------------------------------------------------


def _review_url(asset: Asset) -> str:
    return reverse("admin:qa_qareview_change", args=[QAReview.objects.get(asset=asset).pk])


def test_review_page_shows_the_error_and_asks_for_the_override_reason(client):
    _shoot, (asset,) = _in_qa()
    _record(asset, face_identity=RuntimeError("dlib model missing"), garment_ssim=False)
    client.force_login(reviewer())
    page = client.get(_review_url(asset)).content.decode()
    assert 'qa-badge qa-error">error</span>' in page and ">n/a<" not in page
    assert 'name="override_reason"' in page
    assert "Failed: Garment SSIM" in page and "Errored: Face identity distance" in page

    response = client.post(_review_url(asset), {"decision": "approve"})
    assert response.status_code == 200  # the page again, with the reason asked for
    assert "give a reason" in response.content.decode()
    _unchanged(asset)

    response = client.post(
        _review_url(asset), {"decision": "approve", "override_reason": "looked at it: fine"}
    )
    assert response.status_code == 302
    assert Asset.objects.get(pk=asset.pk).status == Asset.Status.QA_APPROVED
    note = AssetEvent.objects.get(asset=asset, to_status="qa_approved").note
    assert note.endswith("looked at it: fine") and "garment_ssim" in note


def test_review_page_without_blocking_checks_has_no_override_field(client):
    _shoot, (asset,) = _in_qa()
    _record(asset, garment_ssim=True)
    client.force_login(reviewer())
    page = client.get(_review_url(asset)).content.decode()
    assert 'name="override_reason"' not in page


def test_change_list_shows_errored_checks_as_error(client):
    _shoot, (asset,) = _in_qa()
    _record(asset, sharpness=RuntimeError("boom"))
    client.force_login(reviewer())
    body = client.get(CHANGELIST).content.decode()
    assert 'class="qa-badge qa-error"' in body and 'class="qa-badge qa-na"' not in body
    shown = client.get(CHANGELIST, {"checks": "error"}).context["cl"].result_list
    assert [r.asset_id for r in shown] == [asset.pk]


def test_bulk_approve_skips_assets_that_need_an_override(client):
    shoot, (ok, failed, errored, unchecked) = _in_qa(4)
    _record(ok, garment_ssim=True)
    _record(failed, garment_changed=False)
    _record(errored, hand_count=RuntimeError("mediapipe"))
    client.force_login(reviewer())
    reviews = QAReview.objects.filter(asset__job__run__shoot=shoot)
    response = client.post(
        CHANGELIST,
        {"action": "approve_selected", "_selected_action": [r.pk for r in reviews]},
        follow=True,
    )
    assert Asset.objects.get(pk=ok.pk).status == Asset.Status.QA_APPROVED
    for asset in (failed, errored, unchecked):
        _unchanged(asset)
    text = " ".join(str(m) for m in response.context["messages"])
    assert "1 asset(s) decided" in text
    assert "Skipped 3 asset(s) that need an override reason" in text
    assert f"#{failed.pk} (failed: garment_changed)" in text
    assert f"#{errored.pk} (error: hand_count)" in text
    assert f"#{unchecked.pk} (checks not run yet)" in text
    assert Shoot.objects.get(pk=shoot.pk).status == ShootStatus.QA_REVIEW
