"""Consent at the moment of use (issue 13): a face is checked each time it is used, not only when
the seller picks it. Regenerate, retry and the gpu job itself leave out a face that was retired
or whose consent ended since, and a video is only made when the consent covers video."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from facelibrary.models import Consent
from facelibrary.selectors import USE_IMAGES, USE_VIDEO, face_usable, unusable_faces
from facelibrary.services import consent_revoke, face_retire
from generation.models import Asset, GenerationJob, GenerationRun
from generation.runner import run_generation_job
from generation.services import NoUsableFace, shoot_retry_generation, shoot_start_generation
from seller.models import ShootEvent, ShootStatus
from tests.factories import FaceFactory, SellerFactory
from tests.generation.test_runner import FAST_VIDEO, confirmed_shoot
from tests.seller.test_pages_builders import active_faces, add_run, analysed_shoot, place
from tests.seller.test_pages_builders import reviewed_shoot as reviewed

S = ShootStatus
J = GenerationJob.Status


def expire_consents(face) -> None:
    """The face's consents ended yesterday (the hourly retirement job has not run yet)."""
    yesterday = timezone.localdate() - timedelta(days=1)
    Consent.objects.filter(face=face).update(
        valid_from=yesterday - timedelta(days=30), expires_on=yesterday
    )


def failed_shoot(faces):
    """A shoot whose last generation (one job per face) failed."""
    shoot = analysed_shoot(SellerFactory(), status=S.FACE_SELECTION)
    place(shoot, S.GENERATING)
    add_run(shoot, faces, job_status="failed")
    return place(shoot, S.GENERATION_FAILED, note="generation failed")


# --- the check -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_check_names_why_a_face_may_not_be_used():
    usable, expired, retired, images_only = active_faces(4)
    expire_consents(expired)
    face_retire(face=retired, actor=None, reason="Model asked to stop.")
    Consent.objects.filter(face=images_only).update(allows_catalog_video=False)

    refused = unusable_faces([usable, expired, retired, images_only], use=USE_IMAGES)
    assert refused == {
        expired.pk: f"Face {expired.code} is no longer available (its consent ended).",
        retired.pk: (
            f"Face {retired.code} is no longer available (it was retired from the face library)."
        ),
    }
    assert face_usable(images_only, use=USE_IMAGES)
    assert not face_usable(images_only, use=USE_VIDEO)
    assert (
        "may not be used for catalog video"
        in unusable_faces([images_only], use=USE_VIDEO)[images_only.pk]
    )
    assert face_usable(usable, use=USE_VIDEO)


# --- regenerate and retry (the services, called by the seller's buttons) -----------------------


@pytest.mark.django_db
def test_regenerate_leaves_out_a_face_retired_after_the_first_run_and_tells_the_seller(client):
    shoot = reviewed(SellerFactory(), faces=2, variants=2)
    first = GenerationRun.objects.get(shoot=shoot)
    kept, retired = sorted({job.face for job in first.jobs.select_related("face")}, key=id_of)
    face_retire(face=retired, actor=None, reason="Model asked to stop.")

    client.force_login(shoot.seller.user)
    response = client.post(reverse("seller:regenerate", args=[shoot.pk]))

    assert response.status_code == 302
    new = GenerationRun.objects.filter(shoot=shoot).exclude(pk=first.pk).get()
    assert list(new.jobs.values_list("face_id", flat=True)) == [kept.pk, kept.pk]
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(f"Face {retired.code} is no longer available" in m for m in said), said
    assert any("left out of this generation" in m for m in said), said
    shoot.refresh_from_db()
    assert shoot.status == S.GENERATING
    note = ShootEvent.objects.filter(shoot=shoot).order_by("-id").first().note
    assert retired.code in note


@pytest.mark.django_db
def test_regenerate_with_no_usable_face_left_is_refused_with_the_reasons(client):
    shoot = reviewed(SellerFactory(), faces=1, variants=1)
    face = GenerationJob.objects.get(run__shoot=shoot).face
    consent_revoke(consent=face.consents.get(), actor=None, reason="Model withdrew consent.")

    client.force_login(shoot.seller.user)
    response = client.post(reverse("seller:regenerate", args=[shoot.pk]))

    assert GenerationRun.objects.filter(shoot=shoot).count() == 1
    said = [str(m) for m in get_messages(response.wsgi_request)]
    assert any(f"Face {face.code} is no longer available" in m for m in said), said
    shoot.refresh_from_db()
    assert shoot.status == S.SELLER_REVIEW


@pytest.mark.django_db
def test_retry_does_not_rerun_a_face_whose_consent_expired():
    kept, expired = active_faces(2)
    shoot = failed_shoot([kept, expired])
    expire_consents(expired)

    run = shoot_retry_generation(shoot=shoot)

    jobs = {job.face_id: job for job in run.jobs.all()}
    assert jobs[kept.pk].status == J.QUEUED and jobs[kept.pk].rq_job_id
    refused = jobs[expired.pk]
    assert refused.status == J.FAILED and refused.error_code == "consent"
    assert refused.error == f"Face {expired.code} is no longer available (its consent ended)."
    assert not refused.rq_job_id and refused.attempts == 0  # never queued
    assert f"Face {expired.code}" in run.dropped[expired.pk]


@pytest.mark.django_db
def test_retry_with_every_face_unusable_is_refused_and_the_shoot_stays_failed():
    (face,) = active_faces(1)
    shoot = failed_shoot([face])
    expire_consents(face)

    with pytest.raises(NoUsableFace, match="its consent ended"):
        shoot_retry_generation(shoot=shoot)

    shoot.refresh_from_db()
    assert shoot.status == S.GENERATION_FAILED
    assert GenerationRun.objects.filter(shoot=shoot).count() == 1


@pytest.mark.django_db
def test_start_with_only_unusable_faces_is_refused():
    (face,) = active_faces(1)
    expire_consents(face)
    shoot = analysed_shoot(SellerFactory(), status=S.FACE_SELECTION)
    with pytest.raises(NoUsableFace):
        shoot_start_generation(shoot=shoot, faces=[face])
    assert not GenerationRun.objects.filter(shoot=shoot).exists()


# --- the gpu job ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_job_whose_face_was_retired_while_queued_fails_with_the_reason_and_no_asset():
    retired, other = active_faces(2)
    shoot = analysed_shoot(SellerFactory(), status=S.FACE_SELECTION)
    place(shoot, S.GENERATING)
    run = add_run(shoot, [retired, other], job_status="queued")
    face_retire(face=retired, actor=None, reason="Model asked to stop.")
    job = run.jobs.get(face=retired)

    run_generation_job(job_id=job.pk, attempt=job.attempts)

    job.refresh_from_db()
    assert job.status == J.FAILED and job.error_code == "consent"
    assert job.error == (
        f"Face {retired.code} is no longer available (it was retired from the face library)."
    )
    assert not Asset.objects.filter(job=job).exists()
    # The rest of the run is untouched: the other job still waits for its worker.
    assert run.jobs.get(face=other).status == J.QUEUED
    run.refresh_from_db()
    shoot.refresh_from_db()
    assert run.status == GenerationRun.Status.ACTIVE and shoot.status == S.GENERATING


@pytest.mark.django_db(transaction=True)
def test_run_goes_on_without_a_revoked_face_and_makes_no_video_without_video_consent(
    samples_dir, settings, tiny_models
):
    shoot = confirmed_shoot(samples_dir, settings)
    images_only = FaceFactory(consent=False)
    Consent.objects.create(
        face=images_only, licence_terms="Catalog images only.", allows_catalog_video=False
    )
    revoked = FaceFactory()
    run = shoot_start_generation(shoot=shoot, faces=[images_only, revoked], run_settings=FAST_VIDEO)
    # Queued on the gpu queue; the model withdraws consent before a worker takes the job.
    consent_revoke(consent=revoked.consents.get(), actor=None, reason="Model withdrew consent.")
    for job in run.jobs.all():
        run_generation_job(job_id=job.pk, attempt=job.attempts)

    refused = run.jobs.get(face=revoked)
    assert refused.status == J.FAILED and refused.error_code == "consent"
    assert "its consent ended" in refused.error and not refused.assets.exists()
    made = run.jobs.get(face=images_only)
    assert made.status == J.SUCCEEDED, made.error
    assert [a.kind for a in made.assets.all()] == [Asset.Kind.IMAGE]  # the image is kept
    assert made.error_code == "video_skipped"
    assert "may not be used for catalog video" in made.error and "No video was made" in made.error
    shoot.refresh_from_db()
    assert shoot.status == S.SELLER_REVIEW
    note = ShootEvent.objects.filter(shoot=shoot).order_by("-id").first().note
    assert "1 image(s) generated" in note and revoked.code in note and "No video" in note


def id_of(face) -> int:
    return face.pk
