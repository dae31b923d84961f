"""What a generation job generates from: the seller's photo, its garment mask and the pose.

The one definition shared by the gpu job (``generation.runner`` builds its request from it) and by
everything that later looks at what a job used (the QA checks compare the result with the same
photo and mask, the QA review page shows them).

A job may record its inputs as ids in its settings (``photo_id``, ``mask_id``; the job's own
settings first, then its run's). Whatever is not recorded, or no longer exists, is resolved from
the shoot as the seller left it: its first photo, that photo's chosen mask version and its latest
analysis (the pose).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from core.files import open_mask, open_rgb
from seller.models import MaskVersion, PhotoAnalysis, ShootPhoto

from .models import GenerationJob

#: settings keys under which a job (or its run) records the ids of its inputs
PHOTO_KEY = "photo_id"
MASK_KEY = "mask_id"


@dataclass(frozen=True)
class JobInputs:
    """The rows a job generates from; any of them is None when the shoot lacks it."""

    photo: ShootPhoto | None
    mask: MaskVersion | None
    analysis: PhotoAnalysis | None

    @property
    def has_pose(self) -> bool:
        return self.analysis is not None and bool(self.analysis.pose_image)

    def photo_image(self) -> Image.Image:
        """The working copy of the seller's photo, RGB."""
        return open_rgb(self.photo.image)

    def mask_array(self) -> np.ndarray:
        """The garment mask, uint8 (255 = garment)."""
        return open_mask(self.mask.mask)

    def pose_image(self) -> Image.Image:
        """The rendered OpenPose skeleton (the ControlNet conditioning image), RGB."""
        return open_rgb(self.analysis.pose_image)


def _recorded(queryset, job: GenerationJob, key: str):
    """The row whose id the job (or else its run) recorded under ``key``, if it still exists."""
    for settings in (job.settings, job.run.settings):
        value = (settings or {}).get(key)
        if value:
            try:
                return queryset.filter(pk=int(value)).first()
            except (TypeError, ValueError):
                return None
    return None


def job_inputs(job: GenerationJob) -> JobInputs:
    """The photo, mask version and pose analysis ``job`` generates (or generated) from."""
    photos = job.run.shoot.photos.all()
    photo = _recorded(photos, job, PHOTO_KEY) or photos.first()
    if photo is None:
        return JobInputs(photo=None, mask=None, analysis=None)
    mask = _recorded(photo.masks.all(), job, MASK_KEY) or photo.masks.filter(is_chosen=True).first()
    return JobInputs(photo=photo, mask=mask, analysis=photo.analyses.first())
