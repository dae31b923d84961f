"""qa_metrics on real sample photos: the numbers each automatic check is judged on."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFilter

from generation.inference import composite, qa_metrics
from qa.checks import LIMITS, MAX_HIGHLIGHTS_CLIPPED
from qa.models import CheckName as C
from tests.qa.factories import parsing_sample

from .media import altered_garment, mp4_bytes, pasted_back, shifted_frames


@pytest.fixture
def street(samples_dir):
    """A real street photo (0002), its ground-truth dress mask and an exact paste-back."""
    photo, mask = parsing_sample(samples_dir, "0002")
    return photo, mask, pasted_back(photo, mask)


# --- garment fidelity ---------------------------------------------------------------------------


@pytest.mark.parametrize("number", ["0002", "0011", "0014", "0023", "0025"])
def test_unaltered_paste_back_passes_and_an_altered_garment_is_caught(samples_dir, number):
    photo, mask = parsing_sample(samples_dir, number)
    result = pasted_back(photo, mask)
    good = qa_metrics.garment_fidelity(photo, result, mask)
    assert good.changed_pixels == 0 and good.changed_fraction == 0
    assert good.ssim == pytest.approx(1.0)
    assert LIMITS[C.GARMENT_CHANGED].judge(good.changed_fraction)
    assert LIMITS[C.GARMENT_SSIM].judge(good.ssim)

    bad = qa_metrics.garment_fidelity(photo, altered_garment(result, mask), mask)
    assert bad.changed_pixels >= 1600
    assert not LIMITS[C.GARMENT_CHANGED].judge(bad.changed_fraction)
    assert bad.ssim < good.ssim


def test_a_jpeg_of_an_exact_paste_back_still_passes(street):
    import io

    photo, mask, result = street
    buffer = io.BytesIO()
    result.save(buffer, format="JPEG", quality=92)
    jpeg = Image.open(buffer)
    found = qa_metrics.garment_fidelity(photo, jpeg, mask)
    assert found.changed_pixels > 0  # not byte-identical...
    assert LIMITS[C.GARMENT_CHANGED].judge(found.changed_fraction)  # ...but not altered
    assert LIMITS[C.GARMENT_SSIM].judge(found.ssim)


def test_a_recoloured_garment_is_caught(street):
    photo, mask, result = street
    arr = np.asarray(result).copy()
    inside = composite.as_bool_mask(mask)
    shift = np.array([25, -15, 0])
    arr[inside] = np.clip(arr[inside].astype(int) + shift, 0, 255).astype(np.uint8)
    found = qa_metrics.garment_fidelity(photo, Image.fromarray(arr), mask)
    assert found.changed_fraction > 0.5


def test_a_result_at_another_resolution_is_compared_at_the_photos_size(street):
    photo, mask, result = street
    smaller = result.resize((result.width // 2, result.height // 2))
    found = qa_metrics.garment_fidelity(photo, smaller, mask)
    assert found.resized
    assert not LIMITS[C.GARMENT_CHANGED].judge(found.changed_fraction)


# --- sharpness, exposure ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["persons/shop_tank.jpg", "persons/vitonhd_00034.jpg", "garments/flatlay_tunic.jpg"]
)
def test_sharp_photos_pass_and_blurred_ones_fail(samples_dir, name):
    image = Image.open(samples_dir / name).convert("RGB")
    assert LIMITS[C.SHARPNESS].judge(qa_metrics.sharpness(image))
    blurred = image.filter(ImageFilter.GaussianBlur(3))
    assert not LIMITS[C.SHARPNESS].judge(qa_metrics.sharpness(blurred))


def test_exposure_of_real_photos_passes_and_dark_or_blown_ones_fail(samples_dir):
    image = Image.open(samples_dir / "persons/street_0223.jpg").convert("RGB")
    good = qa_metrics.exposure(image)
    assert LIMITS[C.EXPOSURE].judge(good.mean)
    dark = qa_metrics.exposure(Image.fromarray((np.asarray(image) * 0.2).astype(np.uint8)))
    assert not LIMITS[C.EXPOSURE].judge(dark.mean)
    blown = np.clip(np.asarray(image).astype(int) * 3, 0, 255).astype(np.uint8)
    bright = qa_metrics.exposure(Image.fromarray(blown))
    assert good.subject_highlights_clipped < MAX_HIGHLIGHTS_CLIPPED
    assert bright.subject_highlights_clipped > MAX_HIGHLIGHTS_CLIPPED


# --- faces --------------------------------------------------------------------------------------


def test_face_match_same_person_close_other_person_far(samples_dir):
    person = Image.open(samples_dir / "persons/shop_tank.jpg")
    # the reference is the same model's face, cropped and rescaled like a library photo
    crop = person.crop((150, 0, 450, 300)).resize((400, 400))
    same = qa_metrics.face_embedding(crop)
    other = qa_metrics.face_embedding(Image.open(samples_dir / "faces/face03.png"))
    assert qa_metrics.face_match(person, same).distance < 0.45
    assert qa_metrics.face_match(person, other).distance > LIMITS[C.FACE_IDENTITY].max_value


def test_no_face_and_several_faces_are_counted(samples_dir):
    flatlay = Image.open(samples_dir / "garments/flatlay_dress.jpg")
    assert qa_metrics.face_match(flatlay, None).face_count == 0
    a = Image.open(samples_dir / "persons/shop_tank.jpg").convert("RGB")
    b = Image.open(samples_dir / "persons/shop_tietop.jpg").convert("RGB")
    pair = Image.new("RGB", (a.width + b.width, max(a.height, b.height)), "white")
    pair.paste(a, (0, 0))
    pair.paste(b, (a.width, 0))
    assert qa_metrics.face_match(pair, None).face_count == 2


# --- hands --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["vitonhd_00034.jpg", "shop_tietop.jpg", "street_1740.jpg"])
def test_real_hands_are_counted_and_plausible(samples_dir, name):
    report = qa_metrics.analyse_hands(Image.open(samples_dir / "persons" / name))
    assert 1 <= report.count <= 2
    assert report.plausibility == 1.0
    assert LIMITS[C.HAND_COUNT].judge(report.count)


def test_extra_hands_are_flagged(samples_dir):
    """Two pasted copies of a real hand: the model now has too many hands."""
    person = Image.open(samples_dir / "persons/vitonhd_00035.jpg").convert("RGB")
    before = qa_metrics.analyse_hands(person)
    hand = max(before.hands, key=lambda h: (h.box[2] - h.box[0]) * (h.box[3] - h.box[1]))
    left, top, right, bottom = hand.box
    pad = 20
    patch = person.crop((left - pad, top - pad, right + pad, bottom + pad))
    edited = person.copy()
    edited.paste(patch, (40, 40))
    edited.paste(patch, (person.width - patch.width - 40, 40))
    after = qa_metrics.analyse_hands(edited)
    assert after.count > before.count
    assert not LIMITS[C.HAND_COUNT].judge(after.count)


def test_finger_proportions_outside_the_human_range_are_implausible():
    class P:
        def __init__(self, x, y, z=0.0):
            self.x, self.y, self.z = x, y, z

    class L:
        def __init__(self, points):
            self.landmark = points

    class H:
        class classification_item:
            label, score = "Left", 0.99

        classification = [classification_item]

    # a palm of length 0.1 whose index finger is 0.5 long (5 palms): no real hand is like that
    world = [P(0, 0)] + [P(0, -0.01 * i) for i in range(1, 21)]
    world[9] = P(0, -0.1)
    for i, y in zip((5, 6, 7, 8), (-0.1, -0.25, -0.4, -0.6), strict=True):
        world[i] = P(0.02, y)
    finding = qa_metrics._hand_finding(L([P(0.5, 0.5)] * 21), L(world), H, 100, 100)
    assert not finding.plausible
    assert "index" in finding.problems[0]


# --- video --------------------------------------------------------------------------------------


def test_steady_clip_is_stable_and_a_swapped_garment_or_face_is_not(samples_dir, tmp_path):
    photo, mask = parsing_sample(samples_dir, "0002")
    other, _ = parsing_sample(samples_dir, "0011")
    steady = shifted_frames(photo, 8)
    swapped = steady[:4] + shifted_frames(other.resize(photo.size), 4)

    path = tmp_path / "steady.mp4"
    path.write_bytes(mp4_bytes(steady))
    frames = qa_metrics.read_video_frames(path)
    assert len(frames) == 8
    good = qa_metrics.video_stability(frames, mask)
    assert LIMITS[C.VIDEO_GARMENT].judge(good.garment_min_ssim)
    assert good.face_frames == 8
    assert LIMITS[C.VIDEO_IDENTITY].judge(good.identity_max_distance)

    path = tmp_path / "swapped.mp4"
    path.write_bytes(mp4_bytes(swapped))
    bad = qa_metrics.video_stability(qa_metrics.read_video_frames(path), mask)
    assert not LIMITS[C.VIDEO_GARMENT].judge(bad.garment_min_ssim)
    assert not LIMITS[C.VIDEO_IDENTITY].judge(bad.identity_max_distance)


def test_long_clips_are_sampled(samples_dir, tmp_path):
    photo, _ = parsing_sample(samples_dir, "0002")
    path = tmp_path / "long.mp4"
    path.write_bytes(mp4_bytes(shifted_frames(photo.resize((276, 420)), 40)))
    assert len(qa_metrics.read_video_frames(path, max_frames=10)) == 10


def test_an_alteration_draws_inside_the_garment(street):
    _photo, mask, result = street
    altered = altered_garment(result, mask)
    diff = np.any(np.asarray(altered) != np.asarray(result), axis=-1)
    assert diff.sum() > 0
    assert composite.as_bool_mask(mask)[diff].all()
