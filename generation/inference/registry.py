"""Which weights live where: named model sets under a local model root.

A model set is a folder ``<model_root>/<set>/`` holding a ``manifest.json`` and the files it lists.
The manifest names the set's components (base checkpoint, ControlNet, IP-Adapter, VAE...), and for
each: its files with sha256 and size, its licence, whether that licence allows commercial use, the
dtype the weights are stored in and the Hub repo + revision they came from.

Nothing here downloads at import or load time. The only network code is ``download_model_set``,
called by the ``download_models`` management command; workers only read local files.

The model root is passed in (the Django side reads ``MODEL_ROOT`` from settings), so this module
stays Django-free and tests can point it at a temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import (
    InferenceError,
    ModelChecksumError,
    ModelLicenceError,
    ModelMissingError,
)

if TYPE_CHECKING:  # torch is heavy; import it only where a device is actually resolved
    import torch

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1
#: per-set cache of file stamps that were fully hashed (see ``_StampStore``)
STAMP_NAME = ".verified.json"

#: set kinds the engine knows how to load
KINDS = ("sd15", "sdxl", "svd")

# Licence ids (Hub ``license:`` tags, lower case) whose terms allow commercial use of the outputs.
# OpenRAIL licences allow it with use restrictions (no illegal/harmful use), which our terms of
# service pass on to sellers. Anything not listed here is refused in commercial mode unless the
# manifest says ``"commercial_use": true`` explicitly (a human decision recorded with the set).
COMMERCIAL_LICENCES = frozenset(
    {
        "apache-2.0",
        "mit",
        "bsd-3-clause",
        "cc0-1.0",
        "cc-by-4.0",
        "creativeml-openrail-m",
        "openrail",
        "openrail++",
    }
)


# --------------------------------------------------------------------------------------------
# Manifest data
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelFile:
    path: str  # relative to the set folder, POSIX separators
    sha256: str
    size: int
    source_path: str | None = None  # path in the source repo when it differs (e.g. fp16 variant)


@dataclass(frozen=True)
class Component:
    name: str
    licence: str
    commercial_use: bool
    dtype: str
    files: tuple[ModelFile, ...]
    source_repo: str | None = None
    source_revision: str | None = None
    #: loader hints, e.g. ``{"weight_name": "ip-adapter_sd15.safetensors", "subfolder": ...}``
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSet:
    name: str
    kind: str
    root: Path  # the set folder
    components: dict[str, Component]
    description: str = ""
    install_hint: str = ""

    @property
    def files(self) -> list[ModelFile]:
        return [f for c in self.components.values() for f in c.files]

    def component(self, name: str) -> Component | None:
        return self.components.get(name)

    def has(self, name: str) -> bool:
        return name in self.components

    def hint(self) -> str:
        return self.install_hint or f"run `manage.py download_models {self.name}`"


def _hint_for(name: str) -> str:
    if name.startswith("tiny-"):
        return "run `manage.py make_tiny_models`"
    return f"run `manage.py download_models {name}`"


def load_manifest(set_dir: Path | str) -> ModelSet:
    """Read ``<set_dir>/manifest.json``; raise ModelMissingError when the set is not installed."""
    set_dir = Path(set_dir)
    name = set_dir.name
    path = set_dir / MANIFEST_NAME
    if not path.is_file():
        raise ModelMissingError(
            f"Model set '{name}' is not installed under {set_dir} (no {MANIFEST_NAME}); "
            f"{_hint_for(name)}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelChecksumError(f"Model set '{name}' has an unreadable {path}: {exc}") from exc
    return _manifest_from_dict(data, set_dir)


def _manifest_from_dict(data: dict[str, Any], set_dir: Path) -> ModelSet:
    if data.get("format") != MANIFEST_FORMAT:
        raise ModelChecksumError(
            f"{set_dir / MANIFEST_NAME} has format {data.get('format')!r}; "
            f"this code reads format {MANIFEST_FORMAT}"
        )
    components = {}
    for cname, c in data["components"].items():
        licence = str(c["licence"]).lower()
        components[cname] = Component(
            name=cname,
            licence=licence,
            commercial_use=bool(c.get("commercial_use", licence in COMMERCIAL_LICENCES)),
            dtype=c.get("dtype", "fp32"),
            files=tuple(
                ModelFile(
                    path=f["path"],
                    sha256=f["sha256"].lower(),
                    size=int(f["size"]),
                    source_path=f.get("source_path"),
                )
                for f in c["files"]
            ),
            source_repo=c.get("source", {}).get("repo"),
            source_revision=c.get("source", {}).get("revision"),
            params=dict(c.get("params", {})),
        )
    name = data.get("name", set_dir.name)
    return ModelSet(
        name=name,
        kind=data["kind"],
        root=set_dir,
        components=components,
        description=data.get("description", ""),
        install_hint=data.get("install_hint", _hint_for(name)),
    )


def manifest_to_dict(model_set: ModelSet) -> dict[str, Any]:
    components: dict[str, Any] = {}
    for c in model_set.components.values():
        entry: dict[str, Any] = {
            "licence": c.licence,
            "commercial_use": c.commercial_use,
            "dtype": c.dtype,
            "source": {"repo": c.source_repo, "revision": c.source_revision},
            "files": [
                {"path": f.path, "sha256": f.sha256, "size": f.size}
                | ({"source_path": f.source_path} if f.source_path else {})
                for f in c.files
            ],
        }
        if c.params:
            entry["params"] = c.params
        components[c.name] = entry
    return {
        "format": MANIFEST_FORMAT,
        "name": model_set.name,
        "kind": model_set.kind,
        "description": model_set.description,
        "install_hint": model_set.install_hint,
        "components": components,
    }


def write_manifest(model_set: ModelSet) -> Path:
    path = model_set.root / MANIFEST_NAME
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest_to_dict(model_set), indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)  # atomic, so a worker never reads half a manifest
    return path


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def describe_files(set_dir: Path, paths: Iterable[str]) -> tuple[ModelFile, ...]:
    """Hash files already in ``set_dir`` (used when building a manifest)."""
    out = []
    for rel in sorted(paths):
        p = set_dir / rel
        out.append(ModelFile(path=rel, sha256=sha256_file(p), size=p.stat().st_size))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# Verification with a stamp cache
# --------------------------------------------------------------------------------------------


class _StampStore:
    """Remembers which files were fully hashed, keyed by (size, mtime_ns, inode).

    Hashing a 2-5 GB set at every worker start costs seconds to minutes, so the full sha256 runs
    once per file change: the stamp is kept in ``<set>/.verified.json`` (shared by all workers on
    the host) and in memory (when the model root is read-only, e.g. a mounted volume).
    """

    _memory: dict[str, dict[str, Any]] = {}
    _lock = threading.Lock()

    def __init__(self, set_dir: Path) -> None:
        self.set_dir = set_dir
        self.path = set_dir / STAMP_NAME
        self.stamps: dict[str, dict[str, Any]] = {}
        try:
            self.stamps = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.stamps = {}

    @staticmethod
    def fingerprint(st: os.stat_result) -> dict[str, int]:
        return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "ino": st.st_ino}

    def _key(self, rel: str) -> str:
        return str(self.set_dir / rel)

    def verified_sha(self, rel: str, st: os.stat_result) -> str | None:
        fp = self.fingerprint(st)
        for stamp in (self._memory.get(self._key(rel)), self.stamps.get(rel)):
            if stamp and all(stamp.get(k) == v for k, v in fp.items()):
                return stamp.get("sha256")
        return None

    def record(self, rel: str, st: os.stat_result, sha: str) -> None:
        stamp = self.fingerprint(st) | {"sha256": sha}
        with self._lock:
            self._memory[self._key(rel)] = stamp
        self.stamps[rel] = stamp

    def save(self) -> None:
        try:
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.stamps, indent=1), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # read-only model root: the in-memory stamps still help
            logger.info("could not write %s (%s); stamps kept in memory only", self.path, exc)

    @classmethod
    def forget_memory(cls) -> None:
        with cls._lock:
            cls._memory.clear()


def verify_set_dir(set_dir: Path | str, *, full_hash: bool = False) -> ModelSet:
    """Check that every file of the set exists with the right size and sha256.

    ``full_hash=False`` trusts a stamp written when the file was last hashed, if the file's size,
    mtime and inode still match it; any changed or new file is hashed. ``full_hash=True`` rehashes
    everything (``download_models --verify``, or after a suspected disk problem).
    """
    model_set = load_manifest(set_dir)
    root = model_set.root
    stamps = _StampStore(root)
    dirty = False
    for f in model_set.files:
        path = root / f.path
        try:
            st = path.stat()
        except FileNotFoundError:
            raise ModelMissingError(
                f"Model set '{model_set.name}' is missing {f.path} under {root}; {model_set.hint()}"
            ) from None
        if st.st_size != f.size:
            raise ModelChecksumError(
                f"Model set '{model_set.name}': {f.path} under {root} has {st.st_size} bytes, "
                f"the manifest expects {f.size}; the file is truncated or replaced, "
                f"delete it and {model_set.hint()}"
            )
        if not full_hash and stamps.verified_sha(f.path, st) == f.sha256:
            continue
        sha = sha256_file(path)
        if sha != f.sha256:
            raise ModelChecksumError(
                f"Model set '{model_set.name}': sha256 of {f.path} under {root} is {sha}, "
                f"the manifest expects {f.sha256}; the file is corrupted or replaced, "
                f"delete it and {model_set.hint()}"
            )
        stamps.record(f.path, st, sha)
        dirty = True
    if dirty:
        stamps.save()
    return model_set


# --------------------------------------------------------------------------------------------
# Licences
# --------------------------------------------------------------------------------------------


def assert_components_allowed(
    model_set: ModelSet, *, commercial: bool, components: Iterable[str] | None = None
) -> None:
    """Refuse non-commercial weights in commercial mode (ModelLicenceError)."""
    if not commercial:
        return
    names = list(components) if components is not None else list(model_set.components)
    refused = [
        f"{n} ({model_set.components[n].licence})"
        for n in names
        if n in model_set.components and not model_set.components[n].commercial_use
    ]
    if refused:
        raise ModelLicenceError(
            f"Model set '{model_set.name}' cannot be used in commercial mode: "
            f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} licensed for "
            "non-commercial use only. Use another model set or component, or disable "
            "commercial mode for internal tests."
        )


def available_sets(model_root: Path | str) -> list[str]:
    """Names of the sets installed under ``model_root`` (folders with a manifest)."""
    root = Path(model_root)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / MANIFEST_NAME).is_file())


# --------------------------------------------------------------------------------------------
# The registry the Django side holds
# --------------------------------------------------------------------------------------------


class ModelRegistry:
    """Named model sets under one model root (``settings.MODEL_ROOT``)."""

    def __init__(self, model_root: Path | str) -> None:
        self.model_root = Path(model_root)

    def set_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise InferenceError(f"Invalid model set name {name!r}")
        return self.model_root / name

    def load_manifest(self, name: str) -> ModelSet:
        return load_manifest(self.set_dir(name))

    def verify_model_set(self, name: str, *, full_hash: bool = False) -> ModelSet:
        return verify_set_dir(self.set_dir(name), full_hash=full_hash)

    def available_sets(self) -> list[str]:
        return available_sets(self.model_root)

    def assert_licence_allows(
        self, name: str, *, commercial: bool, components: Iterable[str] | None = None
    ) -> None:
        assert_components_allowed(
            self.load_manifest(name), commercial=commercial, components=components
        )

    def model_hashes(self, name: str) -> dict[str, str]:
        """``{relative path: sha256}`` of every file in the set, to record on a job."""
        return {f.path: f.sha256 for f in self.load_manifest(name).files}


# --------------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------------


def resolve_device(preferred: str = "auto") -> tuple[str, torch.dtype]:
    """Map a configured device to ``(device, dtype)``: CUDA runs fp16, CPU fp32.

    ``auto`` picks CUDA when present. An explicit ``cuda`` without a GPU is a configuration error
    (a GPU worker silently falling back to CPU would take minutes per image), so it raises.
    """
    import torch

    preferred = (preferred or "auto").strip().lower()
    if preferred == "auto":
        preferred = "cuda" if torch.cuda.is_available() else "cpu"
    if preferred.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InferenceError(
                f"INFERENCE_DEVICE is {preferred!r} but no CUDA device is visible to this worker "
                "(check the driver, CUDA_VISIBLE_DEVICES and that torch is a CUDA build)"
            )
        return preferred, torch.float16
    if preferred == "mps":
        return "mps", torch.float16
    if preferred == "cpu":
        return "cpu", torch.float32
    raise InferenceError(f"Unknown inference device {preferred!r}; use cpu, cuda, cuda:N or auto")


# --------------------------------------------------------------------------------------------
# Catalogue of real, downloadable sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HubFile:
    repo_path: str  # path in the Hub repo
    local_path: str  # path in the set folder (fp16 variants get the plain name)


@dataclass(frozen=True)
class HubComponent:
    name: str
    repo: str
    # A branch or a commit. ``download_model_set`` resolves it to the commit sha it fetched and
    # records that in the manifest; pin the sha here once a download has been reviewed.
    revision: str
    licence: str
    commercial_use: bool
    dtype: str
    files: tuple[HubFile, ...]
    params: dict[str, Any] = field(default_factory=dict)
    optional: bool = False
    gated: bool = False  # needs an accepted licence on the Hub and HF_TOKEN


@dataclass(frozen=True)
class CatalogueEntry:
    kind: str
    description: str
    components: tuple[HubComponent, ...]


def _same(*paths: str) -> tuple[HubFile, ...]:
    return tuple(HubFile(p, p) for p in paths)


def _fp16(*paths: str) -> tuple[HubFile, ...]:
    """``unet/diffusion_pytorch_model.fp16.safetensors`` stored as the plain name."""
    return tuple(HubFile(p, p.replace(".fp16.", ".")) for p in paths)


def _under(prefix: str, files: tuple[HubFile, ...]) -> tuple[HubFile, ...]:
    return tuple(HubFile(f.repo_path, f"{prefix}/{f.local_path}") for f in files)


_TOKENIZER = (
    "merges.txt",
    "special_tokens_map.json",
    "tokenizer_config.json",
    "vocab.json",
)

# a VAE or ControlNet repo holds one diffusers model: its config and its weights
_MODEL_FILES = ("config.json", "diffusion_pytorch_model.safetensors")
_VAE_FILES = _under("vae", _same(*_MODEL_FILES))


def _component(
    name: str,
    repo: str,
    licence: str,
    dtype: str,
    files: tuple[HubFile, ...],
    *,
    params: dict[str, Any] | None = None,
    optional: bool = False,
    gated: bool = False,
) -> HubComponent:
    """A catalogue component that follows its repo's ``main`` until a reviewed sha is pinned.

    Commercial use follows the licence, the same rule ``load_manifest`` applies to a manifest
    that does not state it: a licence outside ``COMMERCIAL_LICENCES`` is refused commercially.
    """
    return HubComponent(
        name=name,
        repo=repo,
        revision="main",
        licence=licence,
        commercial_use=licence in COMMERCIAL_LICENCES,
        dtype=dtype,
        files=files,
        params=params or {},
        optional=optional,
        gated=gated,
    )


def _ip_adapter(weights: str) -> HubComponent:
    """An IP-Adapter from h94/IP-Adapter, ``weights`` being its path in that repo.

    The SD 1.5 and the SDXL (vit-h) adapters both use the ViT-H image encoder under ``models/``.
    """
    weight_name = weights.rsplit("/", 1)[-1]
    encoder = tuple(
        HubFile(f"models/image_encoder/{n}", f"image_encoder/{n}")
        for n in ("config.json", "model.safetensors")
    )
    return _component(
        "ip_adapter",
        "h94/IP-Adapter",
        "apache-2.0",
        "fp16",
        _under("ip_adapter", (HubFile(weights, weight_name), *encoder)),
        params={
            "subfolder": "ip_adapter",
            "weight_name": weight_name,
            "image_encoder_folder": "image_encoder",
        },
    )


CATALOGUE: dict[str, CatalogueEntry] = {
    "sd15": CatalogueEntry(
        kind="sd15",
        description="SD 1.5 inpainting + OpenPose ControlNet 1.1 + IP-Adapter (+ FaceID)",
        components=(
            _component(
                "base",
                "stable-diffusion-v1-5/stable-diffusion-inpainting",
                "creativeml-openrail-m",
                "fp16",
                _same(
                    "model_index.json",
                    "scheduler/scheduler_config.json",
                    "text_encoder/config.json",
                    "unet/config.json",
                    "feature_extractor/preprocessor_config.json",
                    *(f"tokenizer/{n}" for n in _TOKENIZER),
                )
                + _fp16(
                    "text_encoder/model.fp16.safetensors",
                    "unet/diffusion_pytorch_model.fp16.safetensors",
                ),
            ),
            # ft-MSE VAE: sharper faces and fabric than the original SD 1.5 VAE
            _component("vae", "stabilityai/sd-vae-ft-mse", "mit", "fp32", _VAE_FILES),
            _component(
                "controlnet",
                "lllyasviel/control_v11p_sd15_openpose",
                "openrail",
                "fp16",
                _under(
                    "controlnet",
                    _same("config.json") + _fp16("diffusion_pytorch_model.fp16.safetensors"),
                ),
            ),
            _ip_adapter("models/ip-adapter_sd15.safetensors"),
            # FaceID is trained on insightface embeddings, whose models are licensed for
            # non-commercial research only; the model card says the same for these weights.
            _component(
                "ip_adapter_faceid",
                "h94/IP-Adapter-FaceID",
                "non-commercial",
                "fp16",
                _under("ip_adapter", _same("ip-adapter-faceid_sd15.bin")),
                params={"subfolder": "ip_adapter", "weight_name": "ip-adapter-faceid_sd15.bin"},
                optional=True,
            ),
        ),
    ),
    "sdxl": CatalogueEntry(
        kind="sdxl",
        description="SDXL 1.0 inpainting + OpenPose ControlNet SDXL + IP-Adapter SDXL",
        components=(
            _component(
                "base",
                "diffusers/stable-diffusion-xl-1.0-inpainting-0.1",
                "openrail++",
                "fp16",
                _same(
                    "model_index.json",
                    "scheduler/scheduler_config.json",
                    "text_encoder/config.json",
                    "text_encoder_2/config.json",
                    "unet/config.json",
                    *(f"tokenizer/{n}" for n in _TOKENIZER),
                    *(f"tokenizer_2/{n}" for n in _TOKENIZER),
                )
                + _fp16(
                    "text_encoder/model.fp16.safetensors",
                    "text_encoder_2/model.fp16.safetensors",
                    "unet/diffusion_pytorch_model.fp16.safetensors",
                ),
            ),
            # the stock SDXL VAE overflows in fp16 (black/NaN images); this one does not
            _component("vae", "madebyollin/sdxl-vae-fp16-fix", "mit", "fp16", _VAE_FILES),
            _component(
                "controlnet",
                "xinsir/controlnet-openpose-sdxl-1.0",
                "apache-2.0",
                "fp16",
                _under("controlnet", _same(*_MODEL_FILES)),
            ),
            _ip_adapter("sdxl_models/ip-adapter_sdxl_vit-h.safetensors"),
        ),
    ),
    "svd": CatalogueEntry(
        kind="svd",
        description="Stable Video Diffusion img2vid-xt (25 frames, 1024x576)",
        components=(
            # Stability AI Community Licence: commercial use only under its revenue cap and
            # registration terms. Kept off in commercial mode until legal signs it off.
            _component(
                "base",
                "stabilityai/stable-video-diffusion-img2vid-xt",
                "stable-video-diffusion-community",
                "fp16",
                _same(
                    "model_index.json",
                    "scheduler/scheduler_config.json",
                    "feature_extractor/preprocessor_config.json",
                    "image_encoder/config.json",
                    "unet/config.json",
                    "vae/config.json",
                )
                + _fp16(
                    "image_encoder/model.fp16.safetensors",
                    "unet/diffusion_pytorch_model.fp16.safetensors",
                    "vae/diffusion_pytorch_model.fp16.safetensors",
                ),
                gated=True,
            ),
        ),
    ),
}


def download_model_set(
    name: str,
    model_root: Path | str,
    *,
    include_optional: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
    log: Callable[[str], None] = logger.info,
) -> ModelSet:
    """Download a catalogue set into ``<model_root>/<name>``, check every file, write its manifest.

    Each LFS file's sha256 is checked against the Hub's own LFS metadata (and small git files
    against their git blob id), so a truncated or tampered download never gets a manifest.
    Only the ``download_models`` management command calls this; workers never download.
    """
    try:
        entry = CATALOGUE[name]
    except KeyError:
        raise ModelMissingError(
            f"Unknown model set {name!r}; downloadable sets: {', '.join(sorted(CATALOGUE))}"
        ) from None
    from huggingface_hub import HfApi, hf_hub_download

    set_dir = Path(model_root) / name
    set_dir.mkdir(parents=True, exist_ok=True)
    # files land in a staging folder on the same volume, then move into place once checked:
    # no second copy in ~/.cache/huggingface, and no half-written file under its final name
    staging = set_dir / ".download"
    api = HfApi(endpoint=endpoint, token=token)
    components: dict[str, Component] = {}
    for hc in entry.components:
        if hc.optional and not include_optional:
            continue
        log(f"{name}/{hc.name}: {hc.repo}@{hc.revision}")
        try:
            info = api.model_info(hc.repo, revision=hc.revision, files_metadata=True)
        except Exception as exc:
            raise _download_error(name, hc, exc) from exc
        siblings = {s.rfilename: s for s in info.siblings or []}
        files = []
        for hf in hc.files:
            sib = siblings.get(hf.repo_path)
            if sib is None:
                raise ModelMissingError(
                    f"{hc.repo}@{info.sha} has no file {hf.repo_path}; fix the catalogue "
                    f"entry of model set '{name}'"
                )
            kept = _already_installed(set_dir, hf, sib)
            if kept is not None:  # a re-run after an interrupted download skips finished files
                files.append(kept)
                log(f"  {hf.local_path} already there")
                continue
            try:
                cached = hf_hub_download(
                    hc.repo,
                    hf.repo_path,
                    revision=info.sha,
                    token=token,
                    endpoint=endpoint,
                    local_dir=staging / hc.name,
                )
            except Exception as exc:
                raise _download_error(name, hc, exc) from exc
            files.append(_install_file(Path(cached), set_dir, hf, sib, hc.repo))
            log(f"  {hf.local_path} ok")
        components[hc.name] = Component(
            name=hc.name,
            licence=hc.licence,
            commercial_use=hc.commercial_use,
            dtype=hc.dtype,
            files=tuple(files),
            source_repo=hc.repo,
            source_revision=info.sha,
            params=dict(hc.params),
        )
    model_set = ModelSet(
        name=name,
        kind=entry.kind,
        root=set_dir,
        components=components,
        description=entry.description,
        install_hint=f"run `manage.py download_models {name}`",
    )
    write_manifest(model_set)
    shutil.rmtree(staging, ignore_errors=True)
    return verify_set_dir(set_dir, full_hash=False)


def _download_error(name: str, hc: HubComponent, exc: Exception) -> ModelMissingError:
    gated = " (gated: accept its licence on huggingface.co and set HF_TOKEN)" if hc.gated else ""
    return ModelMissingError(
        f"Could not download model set '{name}' component '{hc.name}' from "
        f"{hc.repo}@{hc.revision}{gated}: {type(exc).__name__}: {exc}. This needs network access "
        "to the Hugging Face Hub (or a mirror via HF_ENDPOINT); on an offline host, copy a "
        "downloaded model set folder (with its manifest.json) into MODEL_ROOT instead."
    )


def _already_installed(set_dir: Path, hf: HubFile, sibling: Any) -> ModelFile | None:
    dest = set_dir / hf.local_path
    lfs = getattr(sibling, "lfs", None)
    expected = getattr(lfs, "sha256", None) if lfs is not None else None
    if not expected or not dest.is_file() or dest.stat().st_size != getattr(lfs, "size", -1):
        return None
    if sha256_file(dest) != expected:
        return None
    source = hf.repo_path if hf.repo_path != hf.local_path else None
    return ModelFile(hf.local_path, expected, dest.stat().st_size, source)


def _git_blob_sha1(path: Path) -> str:
    h = hashlib.sha1(usedforsecurity=False)
    h.update(f"blob {path.stat().st_size}\0".encode())
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _install_file(cached: Path, set_dir: Path, hf: HubFile, sibling: Any, repo: str) -> ModelFile:
    sha = sha256_file(cached)
    lfs = getattr(sibling, "lfs", None)
    expected = getattr(lfs, "sha256", None) if lfs is not None else None
    if expected is not None and sha != expected:
        raise ModelChecksumError(
            f"{repo}/{hf.repo_path}: downloaded sha256 {sha} != Hub LFS sha256 {expected}"
        )
    blob_id = getattr(sibling, "blob_id", None)
    if expected is None and blob_id and _git_blob_sha1(cached) != blob_id:
        raise ModelChecksumError(f"{repo}/{hf.repo_path}: git blob id mismatch after download")
    dest = set_dir / hf.local_path
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(cached, dest)
    return ModelFile(
        path=hf.local_path,
        sha256=sha,
        size=dest.stat().st_size,
        source_path=hf.repo_path if hf.repo_path != hf.local_path else None,
    )
