"""Generated assets for QA and catalog tests, built with the ORM from real sample photos.

The generation engine is not involved: a "result" is any image we choose (the seller's photo with
the garment pasted back onto another picture, or one altered on purpose), written to storage like
the engine would write it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from django.contrib.auth.models import Permission
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from core.roles import QA_REVIEWERS
from generation.models import Asset, GenerationJob, GenerationRun
from seller.models import MaskVersion, Shoot, ShootPhoto, ShootStatus
from tests.factories import UserFactory, shoot_in_status

DRESS_LABELS = ("dress", "romper")


def png(image: Image.Image | np.ndarray) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def store(data: bytes, ext: str, prefix: str = "test") -> str:
    return default_storage.save(f"{prefix}/f.{ext}", ContentFile(data))


def parsing_sample(samples_dir: Path, number: str) -> tuple[Image.Image, np.ndarray]:
    """A street photo and its ground-truth dress mask (uint8, 255 = garment)."""
    base = samples_dir / "parsing"
    labels = json.loads((base / "labels.json").read_text())["labels"]
    wanted = [labels.index(name) for name in DRESS_LABELS]
    image = Image.open(base / "images" / f"{number}.jpg").convert("RGB")
    label_map = np.asarray(Image.open(base / "labels" / f"{number}.png"))
    return image, (np.isin(label_map, wanted).astype(np.uint8) * 255)


def reviewer(**kwargs):
    """A staff user in qa_reviewers with the group's permissions."""
    from core.roles import ensure_groups

    ensure_groups()
    user = UserFactory(groups=[QA_REVIEWERS], is_staff=True, **kwargs)
    return user


def staff_without_decide(**kwargs):
    """Staff who may look at the QA queue but not decide (e.g. a support agent)."""
    user = UserFactory(is_staff=True, **kwargs)
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="qa", codename="view_qareview")
    )
    return user


def add_photo(shoot: Shoot, image: Image.Image, mask: np.ndarray | None) -> ShootPhoto:
    data = png(image)
    photo = ShootPhoto.objects.create(
        shoot=shoot,
        original=store(data, "png", "originals"),
        image=store(data, "png", "photos"),
        width=image.width,
        height=image.height,
        sha256="0" * 64,
    )
    if mask is not None:
        MaskVersion.objects.create(
            photo=photo, version=1, mask=store(png(mask), "png", "masks"), is_chosen=True
        )
    return photo


def make_asset(
    shoot: Shoot,
    *,
    image: Image.Image | None = None,
    status: str = Asset.Status.GENERATED,
    kind: str = Asset.Kind.IMAGE,
    video: bytes | None = None,
    face=None,
    model_set: str = "tiny-sd15",
    seconds: float = 2.0,
    job_settings: dict | None = None,
) -> Asset:
    run = shoot.runs.first() or GenerationRun.objects.create(
        shoot=shoot, status=GenerationRun.Status.SUCCEEDED
    )
    job = GenerationJob.objects.create(
        run=run,
        face=face,
        seed=1,
        model_set=model_set,
        seconds_per_image=seconds,
        settings=job_settings or {},
    )
    GenerationJob.objects.filter(pk=job.pk).update(status=GenerationJob.Status.SUCCEEDED)
    if kind == Asset.Kind.VIDEO:
        name = store(video or b"", "mp4", "assets")
        poster = store(png(image), "png", "assets") if image is not None else ""
        width, height = image.size if image is not None else (0, 0)
    else:
        image = image or Image.new("RGB", (640, 800), (200, 200, 200))
        name, poster = store(png(image), "png", "assets"), ""
        width, height = image.size
    asset = Asset.objects.create(
        job=job, kind=kind, file=name, poster=poster, width=width, height=height, checksum="c" * 64
    )
    Asset.objects.filter(pk=asset.pk).update(status=status)
    asset.refresh_from_db()
    return asset


def checks_passed(*assets: Asset) -> None:
    """Record passing automatic checks for each asset, as if the checks job had run and passed:
    QA approval needs checks that ran and did not fail (or an override reason). Checks that a
    sync-mode test already ran for real are marked passed too."""
    from qa.models import AssetCheck, CheckName

    for asset in assets:
        AssetCheck.objects.update_or_create(
            asset_id=asset.pk,
            name=CheckName.RESOLUTION,
            defaults={"score": 800, "min_value": 512, "passed": True},
        )
        AssetCheck.objects.filter(asset_id=asset.pk).update(passed=True, errored=False)


def shoot_with_assets(
    n: int = 2,
    *,
    status: str = ShootStatus.SELLER_REVIEW,
    asset_status: str = Asset.Status.GENERATED,
    seller=None,
    **asset_kwargs,
) -> tuple[Shoot, list[Asset]]:
    shoot = shoot_in_status(status, **({"seller": seller} if seller else {}))
    face = asset_kwargs.pop("face", None)
    assets = [make_asset(shoot, status=asset_status, face=face, **asset_kwargs) for _ in range(n)]
    return shoot, assets
