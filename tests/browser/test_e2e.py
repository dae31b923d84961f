"""A seller's whole walk in headless Chromium, against a live server with real RQ workers:

sign in -> upload (drag and drop; a refused file first) -> analysis -> mask review with one
correction -> face selection -> generation on tiny models -> approve / reject -> send to QA.

Each step leaves a screenshot in test-artifacts/screenshots/e2e-*.png.
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from generation.models import Asset, GenerationRun
from seller.models import MaskVersion, Shoot, ShootStatus
from tests.browser.conftest import PHONE, sign_in
from tests.factories import SellerFactory
from tests.seller.test_pages_builders import active_faces, bomb_png

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = ShootStatus
SHOOT_PAGE = re.compile(r"/shoots/\d+/$")

#: small, fast generation on the tiny model sets (the worker reads these settings)
FAST_WORKER_ENV = {
    "GENERATION_STEPS": "2",
    "GENERATION_MAX_SIDE": "128",
    "GENERATION_VIDEO": "true",
    "VIDEO_FRAMES": "3",
    "VIDEO_STEPS": "2",
    "VIDEO_MAX_SIDE": "128",
}

DROP_FILES_JS = """
([selector, files]) => {
  const transfer = new DataTransfer();
  for (const [name, type, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, {type}));
  }
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = {bubbles: true, cancelable: true, dataTransfer: transfer};
    zone.dispatchEvent(new DragEvent(type, init));
  }
}
"""


def drop_files(page, files: list[tuple[str, str, bytes]]) -> None:
    payload = [(name, kind, base64.b64encode(data).decode()) for name, kind, data in files]
    page.evaluate(DROP_FILES_JS, ["[data-dropzone]", payload])


def paint(page, canvas, points: list[tuple[float, float]]) -> None:
    """Drag the mouse through ``points`` given as fractions of the canvas box."""
    canvas.evaluate("el => el.scrollIntoView({block: 'center'})")
    box = canvas.bounding_box()
    xy = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in points]
    page.mouse.move(*xy[0])
    page.mouse.down()
    for x, y in xy[1:]:
        page.mouse.move(x, y, steps=8)
    page.mouse.up()


@pytest.fixture
def workers(start_worker, tiny_models):
    analysis = start_worker("analysis", burst=False)
    gpu = start_worker("gpu", burst=False, **FAST_WORKER_ENV)
    checks = start_worker("default", burst=False)
    return analysis, gpu, checks


def test_seller_walks_from_upload_to_qa(new_page, shot, samples_dir: Path, workers):
    seller = SellerFactory(store_name="Maple & Thread")
    portraits = [(samples_dir / "faces" / f"face0{n}.png").read_bytes() for n in (1, 3, 4)]
    faces = active_faces(3, portraits=portraits)
    dress = (samples_dir / "persons" / "street_0223.jpg").read_bytes()
    page = new_page()

    # --- sign in -------------------------------------------------------------------------------
    page.goto("/")
    assert "/accounts/login/" in page.url
    shot(page, "e2e-01-sign-in")
    sign_in(page, seller.user)
    page.wait_for_selector("text=No shoots yet")
    shot(page, "e2e-02-dashboard-empty")

    # --- new shoot: a bomb is refused by the server, then the real photo goes through ----------
    page.get_by_role("link", name="New shoot").first.click()
    page.get_by_label("SKU").fill("MT-2041")
    page.get_by_label("Title").fill("White summer dress")
    page.get_by_label("Category").select_option("dress")
    page.get_by_label("Scene preset").select_option("studio_grey")
    drop_files(
        page,
        [("white-dress.jpg", "image/jpeg", dress), ("bomb.png", "image/png", bomb_png())],
    )
    assert page.locator("[data-previews] li").count() == 2
    page.evaluate(
        "window.__progress = []; document.body.addEventListener('htmx:xhr:progress',"
        " e => window.__progress.push(e.detail.loaded / e.detail.total))"
    )
    page.get_by_role("button", name="Create shoot").click()
    error = page.locator("#photos-errors")
    error.wait_for()
    assert "bomb.png:" in error.inner_text() and "pixels" in error.inner_text()
    assert page.evaluate("Math.max(...window.__progress)") == 1
    assert page.locator("[data-progress-bar]").get_attribute("value") is not None
    assert not Shoot.objects.exists()
    # The kept files are shown again; the refused one is marked from the server's message.
    refused = page.locator(".preview--bad")
    assert refused.count() == 1 and "bomb.png" in refused.inner_text()
    shot(page, "e2e-03-upload-refused")
    page.get_by_role("button", name="Remove bomb.png").click()
    page.get_by_role("button", name="Create shoot").click()

    # --- analysis: live progress, then the page moves on by itself -----------------------------
    page.wait_for_url(SHOOT_PAGE)
    shoot = Shoot.objects.get(seller=seller)
    assert shoot.sku == "MT-2041" and shoot.scene == "studio_grey"
    page.wait_for_selector("#status-panel")
    shot(page, "e2e-04-analysing")
    page.wait_for_selector("text=Check the garment mask", timeout=180_000)
    shoot.refresh_from_db()
    assert shoot.status == S.MASK_REVIEW, shoot.last_error
    assert page.locator("[hx-trigger]").count() == 0  # polling stopped
    shot(page, "e2e-05-shoot-analysed")

    # --- mask review with one correction -------------------------------------------------------
    page.get_by_role("link", name="Review the mask").click()
    page.wait_for_selector("[data-canvas]")
    page.get_by_label("Show pose skeleton").check()
    page.get_by_label("Mask opacity").fill("70")
    shot(page, "e2e-06-mask-review")
    page.get_by_label("Keep").focus()
    page.keyboard.press("ArrowRight")  # the Remove tool
    assert page.get_by_label("Remove").is_checked()
    canvas = page.locator("[data-canvas]")
    # The handbag at her right hip is not part of the dress: paint it out.
    paint(page, canvas, [(0.60, 0.36), (0.65, 0.38), (0.69, 0.40)])
    assert "1 remove" in page.locator("[data-stroke-count]").inner_text()
    shot(page, "e2e-07-mask-stroke", full_page=False)
    page.get_by_role("button", name="Apply corrections").click()
    page.wait_for_selector("text=Mask version 2 made from your corrections", timeout=60_000)
    chosen = MaskVersion.objects.get(photo__shoot=shoot, is_chosen=True)
    assert chosen.version == 2 and chosen.source == MaskVersion.Source.CORRECTED
    photo = chosen.photo
    [stroke] = chosen.hints["exclude"]
    points = stroke["points"] if isinstance(stroke, dict) else stroke
    # The page sent working-image pixels: the stroke starts where the mouse went down.
    x, y = points[0]
    assert abs(x - 0.60 * photo.width) < 0.02 * photo.width
    assert abs(y - 0.36 * photo.height) < 0.02 * photo.height
    shot(page, "e2e-08-mask-corrected")

    page.get_by_role("button", name="Confirm mask and choose faces").click()

    # --- face selection ------------------------------------------------------------------------
    page.wait_for_url("**/faces/")
    shot(page, "e2e-09-faces")
    page.get_by_label("Gender presentation").select_option("feminine")
    page.wait_for_function("document.querySelectorAll('[data-face-grid] li').length === 2")
    page.locator(f"label[for=face-{faces[0].pk}]").click()
    page.get_by_label("Gender presentation").select_option("")
    page.wait_for_function("document.querySelectorAll('[data-face-grid] li').length === 3")
    page.locator(f"label[for=face-{faces[1].pk}]").click()
    page.get_by_label("Variants per face").select_option("1")
    estimate = page.locator("[data-estimate]").inner_text()
    assert "2 faces selected" in estimate and "2 images" in estimate
    shot(page, "e2e-10-faces-selected")
    page.get_by_role("button", name="Generate photos").click()

    # --- generation on the tiny models ---------------------------------------------------------
    page.wait_for_url(SHOOT_PAGE)
    run = GenerationRun.objects.get(shoot=shoot)
    assert {job.face_id for job in run.jobs.all()} == {faces[0].pk, faces[1].pk}
    page.wait_for_selector("text=Generating your photos")
    shot(page, "e2e-11-generating")
    page.wait_for_selector("text=Your photos are ready", timeout=300_000)
    shoot.refresh_from_db()
    assert shoot.status == S.SELLER_REVIEW, shoot.last_error
    shot(page, "e2e-12-generated")

    # --- results: approve one, reject one with a reason, look at the large view ----------------
    page.get_by_role("link", name="Review results").click()
    images = Asset.objects.filter(job__run=run, kind="image").order_by("job__face__code", "pk")
    assert images.count() == 2
    keep, drop = images
    card = page.locator(f"#asset-{keep.pk}")
    card.get_by_role("button", name="Approve").click()
    page.locator(f"#asset-{keep.pk}[data-asset-status=seller_approved]").wait_for()
    card = page.locator(f"#asset-{drop.pk}")
    card.locator("summary").click()
    card.get_by_label("Why is it rejected?").fill("The hem looks shorter than ours.")
    card.get_by_role("button", name="Reject").click()
    page.locator(f"#asset-{drop.pk}[data-asset-status=seller_rejected]").wait_for()
    shot(page, "e2e-13-results-reviewed")
    keep.refresh_from_db()
    drop.refresh_from_db()
    assert keep.status == Asset.Status.SELLER_APPROVED
    assert drop.status == Asset.Status.SELLER_REJECTED
    assert drop.seller_reason == "The hem looks shorter than ours."

    page.locator(f"#asset-{keep.pk} .asset-card__media").click()
    slider = page.get_by_label("Before / after")
    slider.focus()
    for _ in range(3):
        page.keyboard.press("PageUp")
    assert float(slider.input_value()) > 50
    video_state = page.wait_for_function(
        "(() => { const v = document.querySelector('video');"
        " return v.error ? 'error ' + v.error.code : (v.readyState >= 1 ? 'ok' : false); })()",
        timeout=15_000,
    ).json_value()
    assert video_state == "ok"
    shot(page, "e2e-14-large-view")

    page.get_by_role("link", name="All results").click()
    page.get_by_role("button", name=re.compile(r"Send 1 approved to QA")).click()
    page.wait_for_selector("text=With our QA team")
    shoot.refresh_from_db()
    assert shoot.status == S.QA_REVIEW
    shot(page, "e2e-15-sent-to-qa")

    # --- the same seller on a phone ------------------------------------------------------------
    phone = new_page(PHONE)
    sign_in(phone, seller.user)
    shot(phone, "e2e-16-phone-dashboard")
    phone.goto(f"/shoots/{shoot.pk}/results/")
    shot(phone, "e2e-17-phone-results")
    # The refused upload answered 422 on purpose; nothing else may have failed.
    errors = [e for e in page.console_errors + phone.console_errors if "status of 422" not in e]
    assert errors == []
