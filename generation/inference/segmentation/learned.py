"""Step 2, the learned-parser backends: ``cloth`` (U2-Net cloth parsing, onnxruntime) and
``segformer`` (a SegFormer human/clothes parser, transformers). Their heavy libraries are
imported only when a model is first loaded."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from ..cache import models
from ..errors import InferenceError, ModelMissingError
from .context import Context
from .primitives import BG, FG, PR_BG, PR_FG, _connected_to, _dilate

CLOTH_MODEL_FILE = Path("segmentation") / "u2net_cloth_seg.onnx"
#: a ``save_pretrained`` folder: config.json (with ``id2label``), model.safetensors,
#: preprocessor_config.json
SEGFORMER_DIR = Path("segmentation") / "segformer-clothes"
SEGFORMER_INSTALL_COMMAND = "python manage.py download_models segformer-clothes"


class ClothModelBackend:
    """U2-Net cloth parsing (rembg's ``u2net_cloth_seg``: background/upper/lower/full body).

    We run the ONNX file with onnxruntime and rembg's exact preprocessing instead of going
    through ``rembg.new_session``: rembg's import compiles numba code for ~50 s, and its session
    would try to re-download the file when the checksum differs. The weights file is
    ``<model_root>/segmentation/u2net_cloth_seg.onnx``.
    """

    name = "cloth"
    #: output channels of u2net_cloth_seg
    _CLASSES = {"top": (1,), "bottom": (2,), "dress": (3,), "full_outfit": (1, 2, 3)}

    def __init__(self, model_root: Path | None) -> None:
        self.path = Path(model_root) / CLOTH_MODEL_FILE if model_root else None

    def available(self) -> bool:
        return self.path is not None and self.path.is_file()

    def _session(self) -> Any:
        if not self.available():
            raise ModelMissingError(
                "The garment segmentation model is missing: expected "
                f"{self.path or CLOTH_MODEL_FILE} under the model root. Install it, or use the "
                "classical backend."
            )
        path = self.path
        assert path is not None

        def load() -> Any:
            import onnxruntime as ort

            return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])

        return models.get(f"onnx:{path}", load)

    def class_map(self, work: np.ndarray) -> np.ndarray:
        """Per-pixel class (0 background, 1 upper, 2 lower, 3 full body) at work resolution."""
        session = self._session()
        inp = session.get_inputs()[0]
        side = 768
        resized = cv2.resize(work, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32)
        resized /= max(float(resized.max()), 1e-6)
        mean = np.array((0.485, 0.456, 0.406), np.float32)
        std = np.array((0.229, 0.224, 0.225), np.float32)
        tensor = ((resized - mean) / std).transpose(2, 0, 1)[None].astype(np.float32)
        logits = session.run(None, {inp.name: tensor})[0][0]  # (C, side, side)
        classes = np.argmax(logits, axis=0).astype(np.uint8)
        h, w = work.shape[:2]
        return cv2.resize(classes, (w, h), interpolation=cv2.INTER_NEAREST)

    def trimap(self, ctx: Context, category: str) -> np.ndarray:
        classes = self.class_map(ctx.work)
        hit = np.isin(classes, self._CLASSES[category]).astype(np.uint8)
        if category == "dress":
            # a dress the model reads as top + skirt is still one garment
            hit |= np.isin(classes, (1, 2)).astype(np.uint8) & ctx.person.astype(np.uint8)
        labels = np.where(hit > 0, PR_FG, PR_BG).astype(np.uint8)
        core = cv2.erode(hit, np.ones((7, 7), np.uint8)) > 0
        far = cv2.dilate(hit, np.ones((9, 9), np.uint8)) == 0
        labels[core] = FG
        labels[far] = BG
        return labels


# --- segformer: learned human / clothes parsing ---------------------------------------------------


def _label_key(name: object) -> str:
    """A label name reduced to lower-case letters and digits: "Upper-clothes" -> "upperclothes"."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


# Parser label names by role, as reduced by ``_label_key``. ATR (mattmdjaga/segformer_b2_clothes:
# Background, Hat, Hair, Sunglasses, Upper-clothes, Skirt, Pants, Dress, Belt, Left-shoe,
# Right-shoe, Face, Left-leg, Right-leg, Left-arm, Right-arm, Bag, Scarf), LIP and CIHP (which add
# Coat, Jumpsuits, Glove, Socks, Torso-skin) spell them differently; anything else (hat, shoes,
# socks, glove, bag, background) is never garment but not forced out either.
_UPPER_NAMES = frozenset(
    {"upperclothes", "upperclothing", "uppercloth", "top", "tops", "shirt", "tshirt", "blouse"}
)
_COAT_NAMES = frozenset({"coat", "coats", "jacket", "outerwear"})
_ONE_PIECE_NAMES = frozenset({"dress", "dresses", "jumpsuit", "jumpsuits", "romper"})
_SKIRT_NAMES = frozenset({"skirt", "skirts"})
_PANTS_NAMES = frozenset({"pants", "trousers", "shorts", "jeans", "leggings", "lowerclothes"})
#: clothing that is part of a full outfit (a saree's drape, a kurta set's belt) but of no
#: single-garment category
_OUTFIT_EXTRA_NAMES = frozenset({"belt", "scarf"})
#: definite background; the head labels also join the context's head zone, so they are removed
#: again at full resolution after refinement
_HEAD_NAMES = frozenset({"face", "hair", "head", "sunglasses", "glasses", "eyeglasses"})
_SKIN_NAMES = frozenset(
    {
        "leftarm", "rightarm", "arm", "arms", "lefthand", "righthand", "hand", "hands",
        "leftleg", "rightleg", "leg", "legs", "leftfoot", "rightfoot", "foot", "feet",
        "torsoskin", "skin", "neck",
    }
)  # fmt: skip

#: p(garment) at or above which a pixel is definite garment (after a 2 px erosion)
_P_SURE = 0.85
#: ... probable garment
_P_HIT = 0.5
#: ... probable background (GrabCut may still take it); below it, definite background unless
#: it lies within 3 px of the probable garment
_P_DOUBT = 0.2
#: dress: when the parser's Dress covers less than this share of Dress + Upper-clothes + Skirt,
#: the seller's one-piece was read as a top and a skirt
_ONE_PIECE_SHARE = 0.25


@dataclass(frozen=True)
class ParsingLabels:
    """Which output channels of a human parser play which role, found by label name."""

    names: tuple[str, ...]
    upper: tuple[int, ...]
    coat: tuple[int, ...]
    one_piece: tuple[int, ...]
    skirt: tuple[int, ...]
    pants: tuple[int, ...]
    outfit_extra: tuple[int, ...]
    head: tuple[int, ...]
    skin: tuple[int, ...]

    @classmethod
    def from_id2label(cls, id2label: dict[Any, str]) -> ParsingLabels:
        count = max(int(k) for k in id2label) + 1
        names = [""] * count
        for key, value in id2label.items():
            names[int(key)] = str(value)

        def ids(group: frozenset[str]) -> tuple[int, ...]:
            return tuple(i for i, n in enumerate(names) if _label_key(n) in group)

        labels = cls(
            names=tuple(names),
            upper=ids(_UPPER_NAMES),
            coat=ids(_COAT_NAMES),
            one_piece=ids(_ONE_PIECE_NAMES),
            skirt=ids(_SKIRT_NAMES),
            pants=ids(_PANTS_NAMES),
            outfit_extra=ids(_OUTFIT_EXTRA_NAMES),
            head=ids(_HEAD_NAMES),
            skin=ids(_SKIN_NAMES),
        )
        if not (labels.upper or labels.one_piece or labels.skirt or labels.pants):
            raise InferenceError(
                "The clothes-parsing model's labels ("
                + ", ".join(names)
                + ") name no garment we know (Upper-clothes, Dress, Skirt, Pants, Coat, "
                "Jumpsuits...): it is not a human/clothes parser."
            )
        return labels

    @property
    def clothing(self) -> tuple[int, ...]:
        return self.upper + self.coat + self.one_piece + self.skirt + self.pants + self.outfit_extra

    @property
    def never(self) -> tuple[int, ...]:
        return self.head + self.skin

    def targets(self, category: str, *, top_includes_coat: bool = True) -> tuple[int, ...]:
        """The labels that are the garment of a canonical ``category``."""
        if category == "top":
            return self.upper + (self.coat if top_includes_coat else ())
        if category == "bottom":
            return self.skirt + self.pants
        if category == "dress":
            return self.one_piece
        if category == "full_outfit":
            return self.clothing
        raise ValueError(f"unknown canonical garment category {category!r}")


def _prob_sum(probs: np.ndarray, ids: Sequence[int]) -> np.ndarray:
    if not ids:
        return np.zeros(probs.shape[1:], np.float32)
    return probs[list(ids)].sum(axis=0)


def parsing_trimap(
    probs: np.ndarray,
    labels: ParsingLabels,
    category: str,
    *,
    top_includes_coat: bool = True,
) -> np.ndarray:
    """GrabCut labels from a parser's per-class probabilities (C x H x W, summing to 1).

    - p(garment) is the category's labels summed: from ``_P_SURE`` (2 px inside) it is definite
      garment, from ``_P_HIT`` probable garment, from ``_P_DOUBT`` or within 3 px of the
      probable garment probable background, elsewhere definite background;
    - face, hair and skin (arms, legs, hands, torso skin) are definite background wherever they
      hold half the probability or more;
    - dress: when the parser found (almost) no Dress/Jumpsuits but Upper-clothes and/or Skirt,
      that is how it read the seller's one-piece, and they are the dress. When it did find a
      Dress, Upper-clothes/Skirt regions touching it are probable garment: a bodice or a panel
      read apart keeps the dress's colours and stays; a jacket over the dress usually does not
      and GrabCut drops it.
    """
    garment = _prob_sum(probs, labels.targets(category, top_includes_coat=top_includes_coat))
    secondary = np.zeros(garment.shape, bool)
    parts = labels.upper + labels.skirt
    if category == "dress" and parts:
        winner = probs.argmax(axis=0)
        dress_area = np.isin(winner, labels.one_piece)
        parts_area = np.isin(winner, parts)
        n_dress, n_parts = int(dress_area.sum()), int(parts_area.sum())
        if n_parts and n_dress < _ONE_PIECE_SHARE * (n_dress + n_parts):
            garment = garment + _prob_sum(probs, parts)
        elif n_dress and n_parts:
            secondary = _connected_to(dress_area | parts_area, dress_area) & parts_area
    never = _prob_sum(probs, labels.never) >= 0.5

    hit = garment >= _P_HIT
    sure = cv2.erode((garment >= _P_SURE).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    near = _dilate(hit | secondary, 7) | (garment >= _P_DOUBT)
    out = np.full(garment.shape, BG, np.uint8)
    out[near] = PR_BG
    out[hit | secondary] = PR_FG
    out[sure] = FG
    out[never] = BG
    return out


@dataclass
class _Preprocessing:
    """What SegformerImageProcessor would do, from preprocessor_config.json, with PIL + numpy.

    The image-processor classes are not used: some transformers versions route them through
    torchvision, which this project must not install.
    """

    size: tuple[int, int] | None  # (width, height); None: keep the aspect ratio
    shortest_edge: int | None
    resample: Image.Resampling
    rescale: float | None
    mean: np.ndarray | None
    std: np.ndarray | None

    @classmethod
    def from_folder(cls, folder: Path) -> _Preprocessing:
        path = folder / "preprocessor_config.json"
        cfg: dict[str, Any] = json.loads(path.read_text()) if path.is_file() else {}
        size: tuple[int, int] | None = (512, 512)
        shortest: int | None = None
        raw = cfg.get("size", {"height": 512, "width": 512})
        if not cfg.get("do_resize", True):
            size = None
        elif isinstance(raw, int | float):
            size = (int(raw), int(raw))
        elif "height" in raw and "width" in raw:
            size = (int(raw["width"]), int(raw["height"]))
        elif "shortest_edge" in raw:
            size, shortest = None, int(raw["shortest_edge"])
        rescale = float(cfg.get("rescale_factor", 1 / 255)) if cfg.get("do_rescale", True) else None
        mean = std = None
        if cfg.get("do_normalize", True):
            mean = np.broadcast_to(
                np.asarray(cfg.get("image_mean", (0.485, 0.456, 0.406)), np.float32), (3,)
            )
            std = np.broadcast_to(
                np.asarray(cfg.get("image_std", (0.229, 0.224, 0.225)), np.float32), (3,)
            )
        resample = Image.Resampling(int(cfg.get("resample", Image.Resampling.BILINEAR)))
        return cls(size, shortest, resample, rescale, mean, std)

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        """RGB uint8 HxWx3 -> float32 1x3xH'xW' model input."""
        img = Image.fromarray(rgb)
        target = self.size
        if target is None and self.shortest_edge:
            scale = self.shortest_edge / min(img.size)
            target = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        if target is not None and target != img.size:
            img = img.resize(target, resample=self.resample)
        arr = np.asarray(img, np.float32)
        if self.rescale is not None:
            arr = arr * self.rescale
        if self.mean is not None and self.std is not None:
            arr = (arr - self.mean) / self.std
        return np.ascontiguousarray(arr.transpose(2, 0, 1)[None], dtype=np.float32)


@dataclass
class LoadedParser:
    """A loaded SegFormer parser: model on its device, label roles, preprocessing."""

    model: Any
    labels: ParsingLabels
    preprocess: _Preprocessing
    device: str
    dtype: Any

    def probabilities(self, rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
        """Per-class probabilities (C x height x width, float32) for ``rgb`` at ``size`` (w, h).

        The logits (a quarter of the input resolution) are upsampled bilinearly, in fp32 even
        when the model runs in fp16, then soft-maxed.
        """
        import torch
        import torch.nn.functional as F

        pixels = torch.from_numpy(self.preprocess(rgb)).to(device=self.device, dtype=self.dtype)
        with torch.inference_mode():
            logits = self.model(pixel_values=pixels).logits.float()
            logits = F.interpolate(
                logits, size=(size[1], size[0]), mode="bilinear", align_corners=False
            )
            probs = torch.softmax(logits, dim=1)[0]
        return probs.cpu().numpy().astype(np.float32, copy=False)


class SegformerBackend:
    """A SegFormer human/clothes parser (transformers ``SegformerForSemanticSegmentation``).

    Weights: ``<model_root>/segmentation/segformer-clothes/``, a ``save_pretrained`` folder
    (config.json with ``id2label``, model.safetensors, preprocessor_config.json), e.g.
    ``mattmdjaga/segformer_b2_clothes`` (ATR labels) or a LIP/CIHP parser. Labels are matched to
    our categories by name (:class:`ParsingLabels`), so any of those label sets works.

    Runs on ``device`` (``cpu`` in fp32; ``cuda``/``cuda:N`` in fp16; ``auto``), loaded once per
    process and device through ``cache.models``. Its trimap keeps the shared pipeline: seller
    hints still override it and GrabCut still snaps the outline to the photo. The parser's own
    face, hair and sunglasses are added to the context's head zone, so they stay out of the final
    mask even where the face detector missed them (seller include hints still win there).
    """

    name = "segformer"

    def __init__(
        self,
        model_root: Path | str | None,
        *,
        device: str = "cpu",
        top_includes_coat: bool = True,
    ) -> None:
        self.folder = Path(model_root) / SEGFORMER_DIR if model_root else None
        self.device = device
        #: a "top" is the outermost upper garment: Coat (LIP/CIHP) counts as top
        self.top_includes_coat = top_includes_coat

    def available(self) -> bool:
        return (
            self.folder is not None
            and (self.folder / "config.json").is_file()
            and (self.folder / "model.safetensors").is_file()
        )

    def missing_error(self) -> ModelMissingError:
        where = self.folder if self.folder is not None else f"<model root>/{SEGFORMER_DIR}"
        return ModelMissingError(
            f"The clothes-parsing model (segformer) is missing: expected the folder {where} "
            "holding config.json, model.safetensors and preprocessor_config.json. Install it "
            f"with `{SEGFORMER_INSTALL_COMMAND}`, or choose another segmentation backend "
            "(auto, cloth, classical)."
        )

    def cache_key(self) -> str:
        """The key of the loaded model in ``cache.models`` (one per folder and device)."""
        from ..registry import resolve_device

        if self.folder is None:
            raise self.missing_error()
        device, _ = resolve_device(self.device)
        return f"segformer:{self.folder.resolve()}:{device}"

    def load(self) -> LoadedParser:
        """The parser, loaded on the first call in this process (per folder and device)."""
        if not self.available():
            raise self.missing_error()
        from ..registry import resolve_device

        folder = self.folder
        assert folder is not None
        key = self.cache_key()
        device, dtype = resolve_device(self.device)

        def loader() -> LoadedParser:
            from safetensors import SafetensorError
            from transformers import SegformerForSemanticSegmentation

            def broken(reason: str) -> ModelMissingError:
                return ModelMissingError(
                    f"The clothes-parsing model in {folder} could not be loaded ({reason}). "
                    f"Reinstall it with `{SEGFORMER_INSTALL_COMMAND}`."
                )

            try:
                model, info = SegformerForSemanticSegmentation.from_pretrained(
                    str(folder), local_files_only=True, dtype=dtype, output_loading_info=True
                )
            except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
                raise broken(str(exc)) from exc
            # transformers fills weights absent from the file with random values and only warns:
            # a truncated or mismatched checkpoint would give confident nonsense
            missing = sorted(info.get("missing_keys") or ())
            if missing:
                raise broken(
                    f"{len(missing)} weights missing from model.safetensors: {missing[:3]}"
                )
            if info.get("mismatched_keys"):
                raise broken(f"weights of the wrong shape: {sorted(info['mismatched_keys'])[:3]}")
            model.to(device).eval()
            return LoadedParser(
                model=model,
                labels=ParsingLabels.from_id2label(model.config.id2label),
                preprocess=_Preprocessing.from_folder(folder),
                device=device,
                dtype=dtype,
            )

        return models.get(key, loader)

    def trimap(self, ctx: Context, category: str) -> np.ndarray:
        parser = self.load()
        # the model sees the full-resolution photo (resized to its input size), not ctx.work
        probs = parser.probabilities(ctx.full, ctx.size)
        if parser.labels.head:
            head = _prob_sum(probs, parser.labels.head)
            ctx.head = ctx.head | (head >= 0.5)
            height, width = ctx.full.shape[:2]
            head_full = cv2.resize(head, (width, height), interpolation=cv2.INTER_LINEAR)
            ctx.head_full = ctx.head_full | (head_full >= 0.5)
        return parsing_trimap(
            probs, parser.labels, category, top_includes_coat=self.top_includes_coat
        )
