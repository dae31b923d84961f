"""Put the seller's garment pixels back into a generated image, and measure that we did.

The product promise is "the exact garment": whatever the diffusion model drew, every pixel inside
the (slightly eroded) garment mask is copied from the seller's photo, byte for byte. Only a narrow
band around the garment edge is blended, so the seam between real fabric and generated body or
background does not show.

Masks are ``uint8`` arrays (H, W) with 255 = garment (keep) and 0 = everything else; any value
>= 128 counts as garment, so a resized or anti-aliased mask still works.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from .errors import InferenceError

MaskLike = np.ndarray | Image.Image


def as_bool_mask(mask: MaskLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """(H, W) bool from a uint8/bool array or a PIL image; resized (nearest) to ``size`` (w, h)."""
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    if mask.dtype != np.bool_:
        mask = mask >= 128
    if size is not None and (mask.shape[1], mask.shape[0]) != size:
        mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    return mask


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    """Shrink a bool mask by ``px`` pixels (a disk, so corners shrink evenly)."""
    if px <= 0:
        return mask.copy()
    # BORDER_CONSTANT 0 would eat a garment touching the frame edge; replicate keeps it
    out = cv2.erode(mask.astype(np.uint8), _disk(px), borderType=cv2.BORDER_REPLICATE)
    return out.astype(bool)


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask.copy()
    return cv2.dilate(mask.astype(np.uint8), _disk(px)).astype(bool)


def inpaint_mask_from_garment(
    garment_mask: MaskLike, *, dilate_px: int = 0, erode_px: int = 6
) -> Image.Image:
    """The mask the inpainting pipeline repaints (white = repaint): NOT(garment).

    ``dilate_px`` first grows the keep region (for a segmentation that hugs the garment too
    tightly). ``erode_px`` then lets the repainted region reach that far *into* the garment edge,
    so the model draws arms, hair and background up to and under the seam; ``paste_garment`` then
    puts the real edge back with a soft blend.
    """
    keep = erode(dilate(as_bool_mask(garment_mask), dilate_px), erode_px)
    return Image.fromarray(np.where(keep, 0, 255).astype(np.uint8))


def blend_alpha(garment_mask: MaskLike, *, erode_px: int = 2, feather_px: int = 6) -> np.ndarray:
    """Weight of the original photo per pixel: 1 inside the eroded garment, falling linearly to 0
    over ``feather_px`` pixels outside it, 0 elsewhere. float32 (H, W)."""
    core = erode(as_bool_mask(garment_mask), erode_px)
    if feather_px <= 0:
        return core.astype(np.float32)
    # distance (px) from each non-core pixel to the nearest core pixel
    dist = cv2.distanceTransform((~core).astype(np.uint8), cv2.DIST_L2, 5)
    alpha = np.clip(1.0 - dist / float(feather_px + 1), 0.0, 1.0)
    alpha[core] = 1.0
    return alpha.astype(np.float32)


def paste_garment(
    original: Image.Image,
    generated: Image.Image,
    garment_mask: MaskLike,
    *,
    erode_px: int = 2,
    feather_px: int = 6,
) -> Image.Image:
    """The generated image with the original garment pasted back (RGB, original size).

    Inside the garment mask eroded by ``erode_px`` the result is a plain uint8 copy of the
    original (bit-exact: no alpha arithmetic, so no rounding); in a ``feather_px`` band around it
    the two are blended; elsewhere it is the generated image. ``generated`` is resized to the
    original's size first if the pipeline ran at a different resolution.
    """
    orig = np.asarray(original.convert("RGB"))
    h, w = orig.shape[:2]
    gen_img = generated.convert("RGB")
    if gen_img.size != (w, h):
        gen_img = gen_img.resize((w, h), Image.Resampling.LANCZOS)
    gen = np.asarray(gen_img)
    mask = as_bool_mask(garment_mask)
    if mask.shape != (h, w):
        raise InferenceError(
            f"garment mask is {mask.shape[1]}x{mask.shape[0]} but the photo is {w}x{h}"
        )
    core = erode(mask, erode_px)
    alpha = blend_alpha(mask, erode_px=erode_px, feather_px=feather_px)[..., None]
    out = np.rint(orig * alpha + gen * (1.0 - alpha)).astype(np.uint8)
    out[core] = orig[core]  # the guarantee: an exact copy, whatever the float math did
    return Image.fromarray(out)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------


def changed_pixels_inside(original: Image.Image, result: Image.Image, mask: MaskLike) -> int:
    """How many pixels inside ``mask`` differ (any channel) between the two images."""
    a = np.asarray(original.convert("RGB"))
    b = np.asarray(result.convert("RGB"))
    if a.shape != b.shape:
        raise InferenceError(f"images differ in size: {a.shape} vs {b.shape}")
    m = as_bool_mask(mask, size=(a.shape[1], a.shape[0]))
    return int(np.any(a != b, axis=-1)[m].sum())


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two grayscale float images in [0, 255] (Wang et al. 2004: Gaussian
    window 11, sigma 1.5, K1 0.01, K2 0.03), the same constants as scikit-image's
    ``gaussian_weights=True`` mode."""
    c1 = (0.01 * 255) ** 2
    c2 = (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a * mu_a
    var_b = blur(b * b) - mu_b * mu_b
    cov = blur(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2)
    return num / den


def ssim_inside(original: Image.Image, result: Image.Image, mask: MaskLike) -> float:
    """Mean SSIM (luma) over the pixels inside ``mask``; 1.0 means identical there.

    The 11x11 window sees up to 5 px (7 px diagonally) around each pixel, so pixels near the mask
    edge also reflect what lies just outside it: erode the mask by 8 px to score the interior
    alone."""
    a = np.asarray(original.convert("L"), dtype=np.float64)
    b = np.asarray(result.convert("L"), dtype=np.float64)
    if a.shape != b.shape:
        raise InferenceError(f"images differ in size: {a.shape} vs {b.shape}")
    m = as_bool_mask(mask, size=(a.shape[1], a.shape[0]))
    if not m.any():
        raise InferenceError("the mask is empty; SSIM inside it is undefined")
    return float(ssim_map(a, b)[m].mean())
