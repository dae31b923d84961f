"""Seller pages in headless Chromium with seeded data (no workers): layout at laptop and phone
sizes, keyboard use, labels, live polling that stops, the client-side upload checks."""

from __future__ import annotations

import pytest
from django.urls import reverse

from generation.models import Asset
from seller.models import Shoot, ShootStatus
from tests.browser.conftest import LAPTOP, PHONE, sign_in
from tests.factories import SellerFactory, ShootFactory
from tests.seller.test_pages_builders import (
    active_faces,
    add_run,
    analysed_shoot,
    image_bytes,
    place,
    reviewed_shoot,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
S = ShootStatus

#: controls without an accessible name (label, aria-label, aria-labelledby or text)
UNLABELLED_JS = """
() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button, a[href]')]
  .filter(el => el.offsetParent !== null || el.type === 'file')
  .filter(el => {
    const named = el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || (el.labels && el.labels.length) || (el.textContent || '').trim() || el.title
      || (el.querySelector && el.querySelector('img[alt]:not([alt=""])'));
    return !named;
  })
  .map(el => el.outerHTML.slice(0, 120))
"""


@pytest.fixture
def seeded():
    seller = SellerFactory(store_name="Maple & Thread")
    titles = ["Linen wrap dress", "Cropped denim jacket", "Silk slip dress", "Kurta, block print"]
    statuses = [S.ANALYZING, S.MASK_REVIEW, S.GENERATING, S.QA_REVIEW, S.APPROVED, S.PUBLISHED]
    for n in range(14):
        shoot = analysed_shoot(
            seller,
            status=statuses[n % len(statuses)],
            title=titles[n % len(titles)] + f" #{n + 1}",
            sku=f"MT-{1000 + n}",
        )
        if shoot.status == S.GENERATING:
            add_run(shoot, active_faces(1), variants=2, job_status="running")
    review = reviewed_shoot(seller, faces=2, variants=2, video=True, title="Floral tea dress")
    first, second = Asset.objects.filter(job__run__shoot=review, kind="image")[:2]
    Asset.objects.filter(pk=first.pk).update(status=Asset.Status.SELLER_APPROVED)
    Asset.objects.filter(pk=second.pk).update(
        status=Asset.Status.SELLER_REJECTED, seller_reason="The collar is wrong."
    )
    active_faces(6)
    return seller, review


def check_page(page, *, name: str, shot, phone_page=None) -> None:
    assert page.evaluate(UNLABELLED_JS) == [], f"unlabelled controls on {name}"
    assert page.console_errors == [], page.console_errors
    shot(page, name)


def test_every_page_renders_cleanly_on_laptop_and_phone(new_page, seeded, shot):
    seller, review = seeded
    mask_shoot = Shoot.objects.filter(seller=seller, status=S.MASK_REVIEW).first()
    face_shoot = analysed_shoot(seller, status=S.FACE_SELECTION, title="Pleated midi skirt")
    asset = review.runs.get().jobs.first().assets.get(kind="image")
    pages = {
        "dashboard": "/",
        "new-shoot": reverse("seller:shoot_new"),
        "shoot-review": reverse("seller:shoot", args=[review.pk]),
        "mask-review": reverse("seller:mask_review", args=[mask_shoot.pk]),
        "faces": reverse("seller:faces", args=[face_shoot.pk]),
        "results": reverse("seller:results", args=[review.pk]),
        "asset": reverse("seller:asset", args=[review.pk, asset.pk]),
    }
    for device, viewport in (("laptop", LAPTOP), ("phone", PHONE)):
        page = new_page(viewport)
        sign_in(page, seller.user)
        for name, url in pages.items():
            page.goto(url)
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{name} scrolls sideways on {device} by {overflow}px"
            check_page(page, name=f"pages-{device}-{name}", shot=shot)


def test_polling_updates_progress_and_stops_when_done(page, shot):
    seller = SellerFactory()
    shoot = analysed_shoot(seller, status=S.FACE_SELECTION)
    place(shoot, S.GENERATING)
    run = add_run(shoot, active_faces(1), variants=2, job_status="queued")
    sign_in(page, seller.user)
    polls = []
    page.on("request", lambda r: polls.append(r.url) if "/status/" in r.url else None)
    page.goto(reverse("seller:shoot", args=[shoot.pk]))
    assert page.locator("#status-panel[hx-trigger='every 2s']").count() == 1
    first, second = run.jobs.all()
    first.status, first.progress_step = "succeeded", 4
    first.save()
    page.wait_for_function(
        "document.querySelector('#status-panel').textContent.includes('1 of 2 images')",
        timeout=10_000,
    )
    shot(page, "polling-generating")
    # The worker finishes: the page reloads once into the final state and stops polling.
    second.status = "succeeded"
    second.save()
    place(shoot, S.SELLER_REVIEW)
    page.wait_for_selector("text=Your photos are ready", timeout=10_000)
    assert page.locator("[hx-trigger]").count() == 0
    count = len(polls)
    page.wait_for_timeout(4500)
    assert len(polls) == count, "still polling after the final status"
    shot(page, "polling-done")


def test_upload_checks_files_in_the_browser_before_sending(page, shot, tmp_path):
    seller = SellerFactory()
    sign_in(page, seller.user)
    page.goto(reverse("seller:shoot_new"))
    good = tmp_path / "front.png"
    good.write_bytes(image_bytes((300, 400)))
    gif = tmp_path / "anim.gif"
    gif.write_bytes(b"GIF89a" + b"\x00" * 64)
    page.set_input_files("input[type=file]", [str(good), str(gif)])
    previews = page.locator("[data-previews] li")
    assert previews.count() == 2
    assert "Not a JPEG, PNG or WebP image" in previews.nth(1).inner_text()
    # Only the good file will be sent.
    assert page.evaluate("document.querySelector('input[type=file]').files.length") == 1
    shot(page, "upload-client-checks")
    page.get_by_role("button", name="Remove anim.gif").click()
    assert previews.count() == 1


def test_keyboard_only_mask_correction_controls(page):
    seller = SellerFactory()
    shoot = analysed_shoot(seller)
    sign_in(page, seller.user)
    page.goto(reverse("seller:mask_review", args=[shoot.pk]))
    canvas = page.locator("[data-canvas]")
    canvas.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Space")
    assert page.locator("[data-stroke-count]").inner_text().startswith("1 keep")
    page.get_by_label("Keep").focus()
    page.keyboard.press("ArrowRight")  # radio group: arrow keys pick the Remove tool
    assert page.get_by_label("Remove").is_checked()
    canvas.focus()
    page.keyboard.press("Enter")
    assert "1 remove" in page.locator("[data-stroke-count]").inner_text()
    page.get_by_role("button", name="Undo").click()
    assert page.locator("[data-stroke-count]").inner_text().startswith("1 keep, 0 remove")


def test_dashboard_search_updates_without_reload(page):
    seller = SellerFactory()
    ShootFactory(seller=seller, title="Red dress", sku="R-1")
    ShootFactory(seller=seller, title="Blue top", sku="B-1")
    sign_in(page, seller.user)
    page.get_by_label("Search SKU or title").fill("blue")
    page.wait_for_function("!document.body.textContent.includes('Red dress')")
    assert "q=blue" in page.url and page.locator(".shoot-card").count() == 1
