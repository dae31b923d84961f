"""Seller pages through the Django test client: what each page shows and what each form does."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from django.urls import reverse

from generation.models import Asset, GenerationJob, GenerationRun
from seller.models import Shoot, ShootStatus
from tests.factories import SellerFactory, ShootFactory, UserFactory
from tests.seller.test_pages_builders import (
    active_faces,
    add_run,
    analysed_shoot,
    bomb_png,
    image_bytes,
    place,
    reviewed_shoot,
    upload,
)

pytestmark = pytest.mark.django_db
S = ShootStatus
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture(autouse=True)
def fresh_cache():
    """Cached figures (e.g. the recent seconds per image) must not leak between tests."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def seller():
    return SellerFactory()


@pytest.fixture
def client_for(client):
    def login(seller):
        client.force_login(seller.user)
        return client

    return login


@pytest.fixture
def seller_client(client_for, seller):
    return client_for(seller)


def html(response) -> str:
    return response.content.decode()


# --- access ------------------------------------------------------------------------------------


def test_anonymous_visitor_is_sent_to_sign_in(client):
    response = client.get(reverse("seller:dashboard"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_sign_in_page_renders_accessible_form(client):
    response = client.get(reverse("login"))
    page = html(response)
    assert response.status_code == 200
    assert '<label for="id_username">' in page and '<label for="id_password">' in page
    assert "csrfmiddlewaretoken" in page
    assert "Create a seller account" not in page  # sign-up is off by default


def test_sign_in_with_password_lands_on_dashboard(client, seller):
    response = client.post(
        reverse("login"), {"username": seller.user.username, "password": "pass-Word-123"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("seller:dashboard")


def test_user_without_seller_profile_is_refused(client):
    client.force_login(UserFactory())
    assert client.get(reverse("seller:dashboard")).status_code == 403


# --- sign-up -----------------------------------------------------------------------------------


def test_signup_is_not_found_when_disabled(client, settings):
    settings.SIGNUP_ENABLED = False
    assert client.get(reverse("signup")).status_code == 404


def test_signup_creates_a_seller_and_signs_in(client, settings):
    settings.SIGNUP_ENABLED = True
    assert "Create a seller account" in html(client.get(reverse("login")))
    response = client.post(
        reverse("signup"),
        {
            "username": "newshop",
            "email": "shop@example.com",
            "store_name": "New Shop",
            "catalog_seller_id": "cat-new-1",
            "password1": "a-Long-pass-phrase-42",
            "password2": "a-Long-pass-phrase-42",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("seller:dashboard")
    dashboard = client.get(reverse("seller:dashboard"))
    assert dashboard.status_code == 200 and "New Shop" in html(dashboard)


def test_signup_refuses_a_taken_catalog_id(client, settings, seller):
    settings.SIGNUP_ENABLED = True
    response = client.post(
        reverse("signup"),
        {
            "username": "other",
            "email": "o@example.com",
            "store_name": "Other",
            "catalog_seller_id": seller.catalog_seller_id,
            "password1": "a-Long-pass-phrase-42",
            "password2": "a-Long-pass-phrase-42",
        },
    )
    assert response.status_code == 200
    assert "already exists" in html(response)


# --- dashboard ---------------------------------------------------------------------------------


def test_dashboard_shows_own_shoots_with_status_chips_and_thumbnails(seller_client, seller):
    shoot = analysed_shoot(seller, title="Linen wrap dress")
    ShootFactory(title="Someone else's dress")
    page = html(seller_client.get(reverse("seller:dashboard")))
    assert "Linen wrap dress" in page and "Someone else" not in page
    assert 'class="chip chip--todo">Mask review<' in page
    thumb = reverse("seller:photo_file", args=[shoot.pk, shoot.photos.get().pk, "thumb"])
    assert thumb in page


def test_dashboard_empty_state_invites_a_first_shoot(seller_client):
    page = html(seller_client.get(reverse("seller:dashboard")))
    assert "No shoots yet" in page and reverse("seller:shoot_new") in page


def test_dashboard_search_and_filters(seller_client, seller):
    ShootFactory(seller=seller, sku="RED-1", title="Red dress", category="dress")
    ShootFactory(seller=seller, sku="BLU-2", title="Blue top", category="top")
    place(ShootFactory(seller=seller, sku="GRN-3", title="Green skirt"), S.SELLER_REVIEW)
    url = reverse("seller:dashboard")

    def titles(**params):
        page = html(seller_client.get(url, params))
        return {t for t in ("Red dress", "Blue top", "Green skirt") if t in page}

    assert titles() == {"Red dress", "Blue top", "Green skirt"}
    assert titles(q="blu") == {"Blue top"}
    assert titles(q="red-1") == {"Red dress"}
    assert titles(category="top") == {"Blue top"}
    assert titles(status=S.SELLER_REVIEW) == {"Green skirt"}
    assert "No shoot matches" in html(seller_client.get(url, {"q": "nothing"}))


def test_dashboard_htmx_search_returns_only_the_list(seller_client, seller):
    ShootFactory(seller=seller, title="Red dress")
    response = seller_client.get(reverse("seller:dashboard"), {"q": "red"}, **HTMX)
    page = html(response)
    assert page.lstrip().startswith('<div id="shoot-list">') and "<html" not in page
    assert "Red dress" in page


def test_dashboard_paginates(seller_client, seller):
    for n in range(30):
        ShootFactory(seller=seller, title=f"Dress number {n:02d}")
    first = html(seller_client.get(reverse("seller:dashboard")))
    second = html(seller_client.get(reverse("seller:dashboard"), {"page": 2}))
    assert "Dress number 29" in first and "Dress number 00" not in first
    assert "Dress number 00" in second and "Page 2 of 2" in second


def test_dashboard_status_counts(seller_client, seller):
    for _ in range(3):
        place(ShootFactory(seller=seller), S.GENERATING)
    page = html(seller_client.get(reverse("seller:dashboard")))
    assert 'Generating <span class="count">3</span>' in page


# --- new shoot ---------------------------------------------------------------------------------


def _shoot_form(*files):
    return {
        "sku": "SKU-42",
        "title": "Floral wrap dress",
        "category": "dress",
        "scene": "street",
        "photos": list(files),
    }


def test_new_shoot_form_renders_labels_and_dropzone(seller_client):
    page = html(seller_client.get(reverse("seller:shoot_new")))
    for field in ("sku", "title", "category", "scene", "photos"):
        assert f'for="id_{field}"' in page
    assert "data-dropzone" in page and 'accept="image/jpeg' in page and "multiple" in page
    assert "<progress" in page and "csrfmiddlewaretoken" in page


@pytest.fixture
def captured_queue(settings, redis_conn):
    settings.QUEUE_MODE = "rq"
    return redis_conn


def test_new_shoot_creates_the_shoot_and_starts_analysis(seller_client, seller, captured_queue):
    response = seller_client.post(
        reverse("seller:shoot_new"),
        _shoot_form(
            upload("front.png", image_bytes()), upload("back.jpg", image_bytes(fmt="JPEG"))
        ),
    )
    shoot = Shoot.objects.get(seller=seller)
    assert response.status_code == 302 and response["Location"] == reverse(
        "seller:shoot", args=[shoot.pk]
    )
    assert (shoot.sku, shoot.title, shoot.scene, shoot.status) == (
        "SKU-42", "Floral wrap dress", "street", S.ANALYZING,
    )  # fmt: skip
    assert shoot.photos.count() == 2


def test_new_shoot_over_htmx_redirects_the_browser(seller_client, seller, captured_queue):
    response = seller_client.post(
        reverse("seller:shoot_new"), _shoot_form(upload("front.png", image_bytes())), **HTMX
    )
    shoot = Shoot.objects.get(seller=seller)
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("seller:shoot", args=[shoot.pk])


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("anim.gif", b"GIF89a" + b"\x00" * 64, "GIF files are not accepted"),
        ("evil.png", b"<svg xmlns='http://www.w3.org/2000/svg'><script/></svg>", "SVG drawing"),
        ("empty.jpg", b"", "the file is empty"),
        ("bomb.png", bomb_png(), "pixels"),
    ],
)
def test_refused_files_are_named_with_a_clear_reason(seller_client, seller, name, data, message):
    response = seller_client.post(
        reverse("seller:shoot_new"),
        _shoot_form(upload("ok.png", image_bytes()), upload(name, data)),
    )
    page = html(response)
    assert response.status_code == 422
    assert f"{name}:" in page and message.lower() in page.lower()
    assert not Shoot.objects.exists()


def test_too_large_file_is_refused_before_decoding(seller_client, settings):
    settings.UPLOAD_MAX_BYTES = 2000
    response = seller_client.post(
        reverse("seller:shoot_new"), _shoot_form(upload("huge.png", image_bytes((400, 400))))
    )
    assert response.status_code == 422
    assert "huge.png: the file is" in html(response) and "the limit is" in html(response)


def test_missing_fields_and_photos_are_reported_in_the_htmx_partial(seller_client):
    response = seller_client.post(reverse("seller:shoot_new"), {"sku": ""}, **HTMX)
    page = html(response)
    assert response.status_code == 422
    assert page.lstrip().startswith('<form id="shoot-form"')
    assert "Add at least one photo" in page and "This field is required" in page
    assert 'aria-invalid="true"' in page


# --- shoot page and live status ----------------------------------------------------------------


def test_shoot_page_shows_timeline_and_polls_while_analysing(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.ANALYZING, title="Silk blouse")
    page = html(seller_client.get(reverse("seller:shoot", args=[shoot.pk])))
    assert "Silk blouse" in page and "Analysing your photos" in page
    assert 'hx-trigger="every 2s"' in page
    assert f"{reverse('seller:shoot_status', args=[shoot.pk])}?seen=analyzing" in page
    assert "Uploaded → Analyzing" in page and "Timeline" in page
    assert 'aria-current="step">Analysis' in page


def test_shoot_page_does_not_poll_once_nothing_is_running(seller_client, seller):
    shoot = analysed_shoot(seller)
    page = html(seller_client.get(reverse("seller:shoot", args=[shoot.pk])))
    assert "every 2s" not in page
    assert reverse("seller:mask_review", args=[shoot.pk]) in page


def test_status_partial_keeps_polling_while_the_status_is_unchanged(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.ANALYZING)
    url = reverse("seller:shoot_status", args=[shoot.pk])
    response = seller_client.get(url, {"seen": S.ANALYZING}, **HTMX)
    page = html(response)
    assert response.status_code == 200 and "HX-Refresh" not in response
    assert page.lstrip().startswith('<section id="status-panel"') and "every 2s" in page


def test_status_partial_reloads_the_page_when_the_status_moved_on(seller_client, seller):
    shoot = analysed_shoot(seller)
    url = reverse("seller:shoot_status", args=[shoot.pk])
    response = seller_client.get(url, {"seen": S.ANALYZING}, **HTMX)
    assert response["HX-Refresh"] == "true"


def test_generation_progress_bars(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    place(shoot, S.GENERATING)
    run = add_run(shoot, active_faces(2), variants=2, job_status="queued")
    jobs = list(run.jobs.all())
    GenerationJob.objects.filter(pk=jobs[0].pk).update(status="succeeded", progress_step=4)
    GenerationJob.objects.filter(pk=jobs[1].pk).update(status="running", progress_step=2)
    page = html(seller_client.get(reverse("seller:shoot_status", args=[shoot.pk]), **HTMX))
    assert "1 of 4 images" in page
    assert '<progress max="4" value="1"' in page  # images finished
    assert '<progress max="16" value="8"' in page  # 4 + 2 + 1 + 1 steps of 16
    assert "every 2s" in page and "Cancel generation" in page


def test_failed_analysis_offers_a_retry(seller_client, seller, captured_queue):
    shoot = analysed_shoot(seller, status=S.ANALYZING)
    Shoot.objects.filter(pk=shoot.pk).update(last_error="The photo is too dark.")
    place(shoot, S.ANALYSIS_FAILED)
    page = html(seller_client.get(reverse("seller:shoot", args=[shoot.pk])))
    assert "The photo is too dark." in page and "every 2s" not in page
    response = seller_client.post(reverse("seller:retry_analysis", args=[shoot.pk]))
    assert response.status_code == 302
    shoot.refresh_from_db()
    assert shoot.status == S.ANALYZING


def test_action_not_allowed_in_this_status_shows_a_message(seller_client, seller):
    shoot = analysed_shoot(seller)
    response = seller_client.post(reverse("seller:retry_analysis", args=[shoot.pk]), follow=True)
    assert "Cannot retry analysis" in html(response)


# --- mask review -------------------------------------------------------------------------------


def test_mask_review_page_shows_original_overlay_and_tools(seller_client, seller):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    mask = photo.masks.get()
    analysis = photo.analyses.get()
    page = html(seller_client.get(reverse("seller:mask_review", args=[shoot.pk])))
    assert reverse("seller:photo_file", args=[shoot.pk, photo.pk, "image"]) in page
    assert reverse("seller:mask_file", args=[shoot.pk, mask.pk]) in page
    assert reverse("seller:pose_file", args=[shoot.pk, analysis.pk]) in page
    assert "data-opacity" in page and "Show pose skeleton" in page
    assert "data-canvas" in page and 'name="brush_radius"' in page
    assert "Confirm mask and choose faces" in page


def test_mask_review_is_read_only_after_confirmation(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    page = html(seller_client.get(reverse("seller:mask_review", args=[shoot.pk])))
    assert "data-canvas" not in page and "Confirm mask" not in page
    assert "The mask is confirmed" in page


def test_files_are_served_with_their_type(seller_client, seller):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    image = seller_client.get(reverse("seller:photo_file", args=[shoot.pk, photo.pk, "image"]))
    assert image.status_code == 200 and image["Content-Type"] == "image/png"
    assert "private" in image["Cache-Control"]
    thumb = seller_client.get(reverse("seller:photo_file", args=[shoot.pk, photo.pk, "thumb"]))
    assert thumb["Content-Type"] == "image/jpeg"
    assert b"".join(thumb.streaming_content)[:3] == b"\xff\xd8\xff"
    mask = seller_client.get(reverse("seller:mask_file", args=[shoot.pk, photo.masks.get().pk]))
    assert mask.status_code == 200 and b"".join(mask.streaming_content)[:4] == b"\x89PNG"


def test_missing_standard_pose_is_offered(seller_client, seller):
    shoot = analysed_shoot(seller)
    shoot.photos.get().analyses.update(keypoints=None, pose_image="")
    page = html(seller_client.get(reverse("seller:mask_review", args=[shoot.pk])))
    assert "could not find a body pose" in page and "Use the standard pose" in page


def test_empty_correction_is_refused_with_a_message(seller_client, seller):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    response = seller_client.post(
        reverse("seller:mask_correct", args=[shoot.pk, photo.pk]),
        {"include_strokes": "", "exclude_strokes": "", "brush_radius": 5},
        **HTMX,
    )
    assert response.status_code == 200
    assert "Paint at least one stroke" in html(response)
    assert photo.masks.count() == 1


def test_choosing_an_older_mask_version(seller_client, seller):
    from tests.seller.test_pages_builders import add_mask

    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    v1 = photo.masks.get()
    add_mask(photo, version=2)
    page = html(seller_client.get(reverse("seller:mask_review", args=[shoot.pk])))
    assert "Use v1" in page and "In use" in page
    response = seller_client.post(
        reverse("seller:mask_choose", args=[shoot.pk, photo.pk]), {"mask": v1.pk}, **HTMX
    )
    assert response.status_code == 200 and "Using mask version 1" in html(response)
    assert photo.masks.get(is_chosen=True) == v1


def test_confirm_mask_moves_on_to_faces(seller_client, seller):
    shoot = analysed_shoot(seller)
    response = seller_client.post(reverse("seller:mask_confirm", args=[shoot.pk]))
    assert response["Location"] == reverse("seller:faces", args=[shoot.pk])
    shoot.refresh_from_db()
    assert shoot.status == S.FACE_SELECTION
    assert shoot.events.last().actor == seller.user


# --- face selection ----------------------------------------------------------------------------


def test_face_page_lists_active_faces_with_estimate(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    faces = active_faces(3)
    page = html(seller_client.get(reverse("seller:faces", args=[shoot.pk])))
    for face in faces:
        assert f'value="{face.pk}" id="face-{face.pk}"' in page
    assert "data-seconds-per-image" in page and "Variants per face" in page
    assert "Scene preset" in page


def test_gallery_filter_over_htmx_returns_the_gallery(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    active_faces(2)
    response = seller_client.get(reverse("seller:faces", args=[shoot.pk]), **HTMX)
    assert html(response).lstrip().startswith('<div id="face-gallery">')


def test_gallery_filters_by_library_attributes(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    feminine, masculine = active_faces(2)
    url = reverse("seller:faces", args=[shoot.pk])
    page = html(seller_client.get(url, {"gender_presentation": "masculine"}, **HTMX))
    assert f'id="face-{masculine.pk}"' in page and f'id="face-{feminine.pk}"' not in page
    page = html(seller_client.get(url, {"region": "east_asia"}, **HTMX))
    assert f'id="face-{feminine.pk}"' in page and f'id="face-{masculine.pk}"' not in page
    full = html(seller_client.get(url))
    assert "Skin tone (Monk scale)" in full and "Monk 3" in full and "East Asia" in full


def test_gallery_filters_are_labelled_and_include_hair_colour(seller_client, seller):
    from facelibrary.models import Face

    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    dark, fair = active_faces(2)
    Face.objects.filter(pk=dark.pk).update(hair_color="black")
    Face.objects.filter(pk=fair.pk).update(hair_color="blonde")
    url = reverse("seller:faces", args=[shoot.pk])
    full = html(seller_client.get(url))
    for name in ("gender_presentation", "age_band", "skin_tone", "region", "expression", "hair"):
        assert f'<label for="id_{name}">' in full and f'name="{name}"' in full
    assert '<label for="id_hair_color">Hair colour</label>' in full
    assert "Black hair" in full and "Blonde hair" in full  # on the face cards
    page = html(seller_client.get(url, {"hair_color": "blonde"}, **HTMX))
    assert f'id="face-{fair.pk}"' in page and f'id="face-{dark.pk}"' not in page
    # a hand-edited URL with an unknown value still applies the filters that are valid
    page = html(seller_client.get(url, {"hair_color": "blonde", "age_band": "nonsense"}, **HTMX))
    assert f'id="face-{fair.pk}"' in page and f'id="face-{dark.pk}"' not in page


def test_gallery_says_when_nothing_matches(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    active_faces(2)
    url = reverse("seller:faces", args=[shoot.pk])
    page = html(seller_client.get(url, {"skin_tone": "10"}, **HTMX))
    assert "No face matches these filters." in page and 'name="faces"' not in page


def test_more_faces_keep_the_filters_with_and_without_javascript(
    seller_client, seller, monkeypatch
):
    monkeypatch.setattr("seller.views.FACES_PER_PAGE", 1)
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    first, _, third = active_faces(3)  # the first and third are feminine
    url = reverse("seller:faces", args=[shoot.pk])
    page = html(seller_client.get(url, {"gender_presentation": "feminine"}))
    more = "?gender_presentation=feminine&amp;page=2"
    assert f'<a class="btn" href="{more}" hx-get="{more}"' in page  # a link: works without JS
    assert f'id="face-{first.pk}"' in page and f'id="face-{third.pk}"' not in page
    # without JavaScript the link loads the page of the next faces, filters kept
    second_page = html(seller_client.get(url, {"gender_presentation": "feminine", "page": 2}))
    assert f'id="face-{third.pk}"' in second_page and f'id="face-{first.pk}"' not in second_page
    assert "Show more faces" not in second_page
    # with htmx it appends the next cards only
    cards = html(seller_client.get(url, {"gender_presentation": "feminine", "page": 2}, **HTMX))
    assert cards.lstrip().startswith('<li class="face-card">') and f'id="face-{third.pk}"' in cards


def test_face_thumbnails_are_served_for_selectable_faces_only(seller_client, seller):
    from facelibrary.models import Face

    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    face, retired = active_faces(2)
    Face.objects.filter(pk=retired.pk).update(status=Face.Status.RETIRED)
    assert reverse("seller:face_thumb", args=[face.pk]) in html(
        seller_client.get(reverse("seller:faces", args=[shoot.pk]))
    )
    thumb = seller_client.get(reverse("seller:face_thumb", args=[face.pk]))
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert seller_client.get(reverse("seller:face_thumb", args=[retired.pk])).status_code == 404


def test_estimate_uses_recent_job_timings(seller_client, seller):
    other = reviewed_shoot(SellerFactory(), faces=1, variants=1)
    GenerationJob.objects.filter(run__shoot=other).update(seconds_per_image=12.0)
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    page = html(seller_client.get(reverse("seller:faces", args=[shoot.pk])))
    assert 'data-seconds-per-image="12.0"' in page


def test_start_generation_creates_the_run(seller_client, seller, captured_queue):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    faces = active_faces(3)
    response = seller_client.post(
        reverse("seller:faces", args=[shoot.pk]),
        {"faces": [faces[0].pk, faces[2].pk], "variants": 2, "scene": "runway"},
    )
    assert response["Location"] == reverse("seller:shoot", args=[shoot.pk])
    run = GenerationRun.objects.get(shoot=shoot)
    assert run.jobs.count() == 4 and run.settings == {"scene": "runway"}
    assert {job.face_id for job in run.jobs.all()} == {faces[0].pk, faces[2].pk}
    shoot.refresh_from_db()
    assert shoot.status == S.GENERATING


def test_start_generation_without_faces_says_so(seller_client, seller):
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    active_faces(1)
    response = seller_client.post(
        reverse("seller:faces", args=[shoot.pk]), {"variants": 1, "scene": "runway"}
    )
    assert response.status_code == 422 and "Pick at least one face" in html(response)
    assert not GenerationRun.objects.exists()


def test_inactive_faces_cannot_be_picked(seller_client, seller):
    from facelibrary.models import Face
    from tests.factories import FaceFactory

    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    retired = FaceFactory(status=Face.Status.RETIRED)
    page = html(seller_client.get(reverse("seller:faces", args=[shoot.pk])))
    assert f'id="face-{retired.pk}"' not in page
    response = seller_client.post(
        reverse("seller:faces", args=[shoot.pk]),
        {"faces": [retired.pk], "variants": 1, "scene": "runway"},
    )
    assert response.status_code == 422 and not GenerationRun.objects.exists()


# --- results -----------------------------------------------------------------------------------


def test_results_are_grouped_per_face(seller_client, seller):
    shoot = reviewed_shoot(seller, faces=2, variants=2)
    page = html(seller_client.get(reverse("seller:results", args=[shoot.pk])))
    codes = sorted({job.face.code for job in GenerationJob.objects.filter(run__shoot=shoot)})
    for code in codes:
        assert f"Face {code} <span" in page
    assert page.count("data-asset=") == 4
    assert "Send approved to QA" in page and "New variants, same faces" in page


def test_approve_and_reject_over_htmx_return_the_card(seller_client, seller):
    shoot = reviewed_shoot(seller, faces=1, variants=2)
    first, second = Asset.objects.filter(job__run__shoot=shoot).order_by("pk")
    approved = seller_client.post(
        reverse("seller:asset_approve", args=[shoot.pk, first.pk]), **HTMX
    )
    assert (
        html(approved)
        .lstrip()
        .startswith(f'<li class="asset-card asset-card--approved" id="asset-{first.pk}"')
    )
    refused = seller_client.post(
        reverse("seller:asset_reject", args=[shoot.pk, second.pk]), {"reason": ""}, **HTMX
    )
    assert "Say what is wrong" in html(refused)
    rejected = seller_client.post(
        reverse("seller:asset_reject", args=[shoot.pk, second.pk]),
        {"reason": "Sleeves changed colour"},
        **HTMX,
    )
    assert "Rejected by seller" in html(rejected) and "Sleeves changed colour" in html(rejected)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (
        Asset.Status.SELLER_APPROVED,
        Asset.Status.SELLER_REJECTED,
    )


def test_send_to_qa(seller_client, seller, captured_queue):
    shoot = reviewed_shoot(seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    refused = seller_client.post(reverse("seller:send_to_qa", args=[shoot.pk]), follow=True)
    assert "Approve at least one result" in html(refused)
    seller_client.post(reverse("seller:asset_approve", args=[shoot.pk, asset.pk]))
    response = seller_client.post(reverse("seller:send_to_qa", args=[shoot.pk]))
    assert response["Location"] == reverse("seller:shoot", args=[shoot.pk])
    shoot.refresh_from_db()
    assert shoot.status == S.QA_REVIEW
    page = html(seller_client.get(reverse("seller:results", args=[shoot.pk])))
    assert "Awaiting QA decision" in page and "✓ Approve" not in page


def test_regenerate_uses_the_same_faces_with_new_seeds(seller_client, seller, captured_queue):
    shoot = reviewed_shoot(seller, faces=2, variants=2)
    first_run = GenerationRun.objects.get(shoot=shoot)
    seller_client.post(reverse("seller:regenerate", args=[shoot.pk]))
    new_run = GenerationRun.objects.filter(shoot=shoot).exclude(pk=first_run.pk).get()
    old = {(j.face_id, j.variant, j.seed) for j in first_run.jobs.all()}
    new = {(j.face_id, j.variant, j.seed) for j in new_run.jobs.all()}
    assert {k[:2] for k in old} == {k[:2] for k in new} and old != new
    shoot.refresh_from_db()
    assert shoot.status == S.GENERATING


def test_asset_detail_has_before_after_slider_and_video(seller_client, seller):
    shoot = reviewed_shoot(seller, faces=1, variants=1, video=True)
    image = Asset.objects.get(job__run__shoot=shoot, kind="image")
    video = Asset.objects.get(job__run__shoot=shoot, kind="video")
    page = html(seller_client.get(reverse("seller:asset", args=[shoot.pk, image.pk])))
    assert "data-compare" in page and 'type="range"' in page
    assert reverse("seller:asset_file", args=[shoot.pk, video.pk, "file"]) in page
    assert "<video" in page and "Before / after" in page


def test_qa_scores_are_shown_when_present(seller_client, seller):
    from qa.models import AssetCheck, CheckName

    shoot = reviewed_shoot(seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    AssetCheck.objects.create(
        asset=asset, name=CheckName.SHARPNESS, score=0.81, min_value=0.5, passed=True
    )
    page = html(seller_client.get(reverse("seller:results", args=[shoot.pk])))
    assert "Sharpness 0.81" in page and "score--pass" in page


def _qa_returned(shoot, asset, *, reason="hands", comment="Six fingers on the left hand"):
    """QA rejected ``asset`` in the shoot's first QA round, which went back to the seller."""
    from qa.models import QAReview, QASubmission

    submission = QASubmission.objects.create(shoot=shoot, number=1, outcome="returned")
    Asset.objects.filter(pk=asset.pk).update(status=Asset.Status.QA_REJECTED)
    return QAReview.objects.create(
        asset=asset, submission=submission, decision="rejected", reason=reason, comment=comment
    )


def test_results_list_what_qa_sent_back_and_why(seller_client, seller):
    shoot = reviewed_shoot(seller, faces=1, variants=2)
    rejected, kept = Asset.objects.filter(job__run__shoot=shoot).order_by("pk")
    _qa_returned(shoot, rejected)
    page = html(seller_client.get(reverse("seller:results", args=[shoot.pk])))
    assert "QA sent back 1 photo" in page
    returns = page.split('aria-labelledby="qa-returns-h"', 1)[1].split("</section>", 1)[0]
    assert f'data-qa-rejection="{rejected.pk}"' in returns
    assert f'data-qa-rejection="{kept.pk}"' not in returns
    assert "<strong>Hands</strong> · Six fingers on the left hand" in returns
    assert reverse("seller:asset", args=[shoot.pk, rejected.pk]) in returns


def test_results_without_qa_rejections_have_no_returns_section(seller_client, seller):
    shoot = reviewed_shoot(seller, faces=1, variants=1)
    page = html(seller_client.get(reverse("seller:results", args=[shoot.pk])))
    assert "QA sent back" not in page


# --- rating a result -----------------------------------------------------------------------------


def test_rating_a_result_stores_it_and_the_page_shows_it(seller_client, seller):
    from qa.models import AssetRating

    shoot = reviewed_shoot(seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    url = reverse("seller:asset", args=[shoot.pk, asset.pk])
    rate = reverse("seller:asset_rate", args=[shoot.pk, asset.pk])
    page = html(seller_client.get(url))
    assert "Not rated yet" in page and f'action="{rate}"' in page
    assert 'name="csrfmiddlewaretoken"' in page and f'hx-post="{rate}"' in page
    for stars in range(1, 6):  # every choice has its own label
        assert f'<label for="stars-{asset.pk}-{stars}">' in page

    response = seller_client.post(rate, {"stars": "4", "comment": " Great drape "})
    assert response.status_code == 302 and response["Location"] == url
    rating = AssetRating.objects.get(asset=asset)
    assert (rating.rated_by, rating.stars, rating.comment) == (seller.user, 4, "Great drape")
    page = html(seller_client.get(url))
    assert 'data-rating="4"' in page and "You rated this 4 of 5" in page
    assert f'id="stars-{asset.pk}-4" required checked' in page

    # changing it over htmx swaps the rating card; still one rating per seller and asset
    card = seller_client.post(rate, {"stars": "2"}, **HTMX)
    assert card.status_code == 200
    assert html(card).lstrip().startswith('<section class="card asset-rating" id="asset-rating"')
    assert "You rated this 2 of 5" in html(card)
    assert list(AssetRating.objects.values_list("stars", flat=True)) == [2]


@pytest.mark.parametrize("stars", ["0", "6", "four", ""])
def test_invalid_stars_give_a_clear_error(seller_client, seller, stars):
    from qa.models import AssetRating

    shoot = reviewed_shoot(seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    rate = reverse("seller:asset_rate", args=[shoot.pk, asset.pk])
    page = html(seller_client.post(rate, {"stars": stars}, follow=True))
    assert "Rate from 1 to 5 stars." in page and "Not rated yet" in page
    card = seller_client.post(rate, {"stars": stars}, **HTMX)
    assert card.status_code == 422 and 'role="alert"' in html(card)
    assert "Rate from 1 to 5 stars." in html(card)
    assert not AssetRating.objects.exists()


def test_another_seller_cannot_rate_a_result(client_for, seller):
    from qa.models import AssetRating

    shoot = reviewed_shoot(seller, faces=1, variants=1)
    asset = Asset.objects.get(job__run__shoot=shoot)
    intruder = client_for(SellerFactory())
    rate = reverse("seller:asset_rate", args=[shoot.pk, asset.pk])
    assert intruder.post(rate, {"stars": "1"}).status_code == 404
    assert intruder.post(rate, {"stars": "1"}, **HTMX).status_code == 404
    assert not AssetRating.objects.exists()


def test_strokes_json_must_be_a_list(seller_client, seller):
    shoot = analysed_shoot(seller)
    photo = shoot.photos.get()
    response = seller_client.post(
        reverse("seller:mask_correct", args=[shoot.pk, photo.pk]),
        {"include_strokes": json.dumps({"x": 1}), "brush_radius": 5},
        **HTMX,
    )
    assert "could not be read" in html(response)


# --- no N+1: the number of queries does not grow with the data on the page ----------------------


def _queries(client, url, **headers) -> int:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url, **headers).status_code == 200
    return len(captured.captured_queries)


def _more_photos(shoot, n):
    from tests.seller.test_pages_builders import add_analysis, add_mask, add_photo

    for position in range(1, n):
        photo = add_photo(shoot, position=position)
        analysis = add_analysis(photo)
        add_mask(photo, analysis=analysis)
        add_mask(photo, version=2, analysis=analysis)


@pytest.mark.parametrize("size", [1, 4])
def test_queries_do_not_grow_with_the_data(client_for, size):
    seller = SellerFactory()
    client = client_for(seller)
    for _ in range(3 * size):
        analysed_shoot(seller)
    review = reviewed_shoot(seller, faces=size, variants=2, video=True)
    for n in range(4 * size):
        place(review, S.SELLER_REVIEW, note=f"event {n}")
    mask_shoot = analysed_shoot(seller)
    _more_photos(mask_shoot, 1 + size)
    face_shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    active_faces(3 * size)
    generating = analysed_shoot(seller, status=S.FACE_SELECTION)
    place(generating, S.GENERATING)
    add_run(generating, active_faces(size), variants=2, job_status="running")
    asset = Asset.objects.filter(job__run__shoot=review, kind="image").first()
    budget = {  # queries per page, whatever the amount of data (3 are session, user, seller)
        reverse("seller:dashboard"): 5,
        reverse("seller:shoot", args=[review.pk]): 7,
        reverse("seller:shoot", args=[generating.pk]): 9,  # + recent timings (then cached)
        reverse("seller:mask_review", args=[mask_shoot.pk]): 7,
        reverse("seller:faces", args=[face_shoot.pk]): 7,
        reverse("seller:results", args=[review.pk]): 8,
        reverse("seller:asset", args=[review.pk, asset.pk]): 8,
    }
    counts = {url: _queries(client, url) for url in budget}
    assert counts == {url: min(counts[url], most) for url, most in budget.items()}, counts
