"""Model sets: manifests, checksums with a stamp cache, licences, devices, the download path."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from generation.inference import registry
from generation.inference.errors import (
    InferenceError,
    ModelChecksumError,
    ModelLicenceError,
    ModelMissingError,
)
from generation.inference.registry import (
    CATALOGUE,
    KINDS,
    ModelRegistry,
    download_model_set,
    load_manifest,
    resolve_device,
    sha256_file,
    verify_set_dir,
)
from generation.inference.tiny import make_tiny_models
from tests.inference.conftest_diffusion import *  # noqa: F403 - session fixtures

UNET = "unet/diffusion_pytorch_model.safetensors"


@pytest.fixture
def sd15_copy(tiny_sd15: Path, tmp_path: Path) -> Path:
    """A private copy of tiny-sd15 to damage (the shared one stays intact)."""
    dest = tmp_path / "root" / "tiny-sd15"
    shutil.copytree(tiny_sd15, dest, ignore=shutil.ignore_patterns(".verified.json"))
    return dest


def _flip_bytes(path: Path, offset: int = -64) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    data[offset + 1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_tiny_manifests_record_real_hashes_and_licences(tiny_model_root: Path) -> None:
    reg = ModelRegistry(tiny_model_root)
    assert {"tiny-sd15", "tiny-sdxl", "tiny-svd"} <= set(reg.available_sets())
    for name, kind in (("tiny-sd15", "sd15"), ("tiny-sdxl", "sdxl"), ("tiny-svd", "svd")):
        ms = reg.load_manifest(name)
        assert ms.kind == kind and ms.files
        for f in ms.files:
            path = ms.root / f.path
            assert path.stat().st_size == f.size
            assert sha256_file(path) == f.sha256
    sd15 = reg.load_manifest("tiny-sd15")
    assert {"base", "controlnet", "ip_adapter", "ip_adapter_faceid", "lora"} <= set(sd15.components)
    assert sd15.components["ip_adapter_faceid"].commercial_use is False
    assert sd15.components["base"].licence == "apache-2.0"
    total = sum(f.size for n in reg.available_sets() for f in reg.load_manifest(n).files)
    assert total < 40 * 1024 * 1024


def test_tiny_build_is_deterministic(tiny_model_root: Path, tmp_path: Path) -> None:
    make_tiny_models(tmp_path, sets=("tiny-svd",))
    again = {f.path: f.sha256 for f in load_manifest(tmp_path / "tiny-svd").files}
    first = {f.path: f.sha256 for f in load_manifest(tiny_model_root / "tiny-svd").files}
    assert again == first


def test_verify_passes_and_later_runs_trust_the_stamp(
    sd15_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = ModelRegistry(sd15_copy.parent)
    reg.verify_model_set("tiny-sd15", full_hash=True)
    assert (sd15_copy / ".verified.json").is_file()

    def no_hashing(path: Path) -> str:
        raise AssertionError(f"{path} was hashed again although it did not change")

    monkeypatch.setattr(registry, "sha256_file", no_hashing)
    registry._StampStore.forget_memory()  # the on-disk stamp alone must be enough
    reg.verify_model_set("tiny-sd15", full_hash=False)


def test_a_changed_file_is_hashed_again(sd15_copy: Path) -> None:
    verify_set_dir(sd15_copy, full_hash=True)
    unet = sd15_copy / UNET
    st = unet.stat()
    _flip_bytes(unet)
    os.utime(unet, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelChecksumError, match="sha256 of unet/diffusion_pytorch_model"):
        verify_set_dir(sd15_copy, full_hash=False)


def test_corrupted_file_fails_a_full_hash_even_with_its_old_mtime(sd15_copy: Path) -> None:
    verify_set_dir(sd15_copy, full_hash=True)
    unet = sd15_copy / UNET
    st = unet.stat()
    _flip_bytes(unet)
    os.utime(unet, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime: stamp fooled
    with pytest.raises(ModelChecksumError, match="corrupted or replaced"):
        verify_set_dir(sd15_copy, full_hash=True)


def test_missing_file_names_the_file_and_the_fix(sd15_copy: Path) -> None:
    (sd15_copy / UNET).unlink()
    with pytest.raises(ModelMissingError) as err:
        ModelRegistry(sd15_copy.parent).verify_model_set("tiny-sd15")
    msg = str(err.value)
    assert f"Model set 'tiny-sd15' is missing {UNET} under {sd15_copy}" in msg
    assert "manage.py make_tiny_models" in msg


def test_missing_set_and_truncated_file(sd15_copy: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelMissingError, match=r"run `manage\.py download_models sd15`"):
        ModelRegistry(tmp_path).verify_model_set("sd15")
    unet = sd15_copy / UNET
    unet.write_bytes(unet.read_bytes()[:-10])
    with pytest.raises(ModelChecksumError, match="truncated"):
        verify_set_dir(sd15_copy)


def test_invalid_set_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InferenceError):
        ModelRegistry(tmp_path).load_manifest("../etc")


def test_commercial_mode_refuses_non_commercial_weights(
    tiny_model_root: Path, tmp_path: Path
) -> None:
    # a set whose base weights are CC BY-NC (no explicit commercial_use flag in the manifest)
    nc = tmp_path / "nc-set"
    shutil.copytree(tiny_model_root / "tiny-svd", nc)
    data = json.loads((nc / "manifest.json").read_text())
    data["components"]["base"]["licence"] = "cc-by-nc-4.0"
    del data["components"]["base"]["commercial_use"]
    (nc / "manifest.json").write_text(json.dumps(data))
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ModelLicenceError, match="non-commercial"):
        reg.assert_licence_allows("nc-set", commercial=True)
    reg.assert_licence_allows("nc-set", commercial=False)

    tiny = ModelRegistry(tiny_model_root)
    with pytest.raises(ModelLicenceError, match="ip_adapter_faceid"):
        tiny.assert_licence_allows("tiny-sd15", commercial=True)
    tiny.assert_licence_allows("tiny-sd15", commercial=True, components=["base", "controlnet"])


def test_model_hashes_cover_every_file(tiny_model_root: Path) -> None:
    reg = ModelRegistry(tiny_model_root)
    hashes = reg.model_hashes("tiny-sd15")
    assert UNET in hashes and all(len(h) == 64 for h in hashes.values())
    assert len(hashes) == len(reg.load_manifest("tiny-sd15").files)


def test_resolve_device() -> None:
    import torch

    assert resolve_device("cpu") == ("cpu", torch.float32)
    if torch.cuda.is_available():
        assert resolve_device("cuda") == ("cuda", torch.float16)
    else:
        assert resolve_device("auto") == ("cpu", torch.float32)
        with pytest.raises(InferenceError, match="no CUDA device"):
            resolve_device("cuda")
    with pytest.raises(InferenceError, match="Unknown inference device"):
        resolve_device("tpu")


def test_catalogue_is_well_formed() -> None:
    assert {"sd15", "sdxl", "svd"} <= set(CATALOGUE)
    for name, entry in CATALOGUE.items():
        assert entry.kind in KINDS, name
        local = [f.local_path for c in entry.components for f in c.files]
        assert len(local) == len(set(local)), f"{name}: two files share a local path"
        for c in entry.components:
            assert "/" in c.repo and c.revision and c.licence and c.files
            if "non-commercial" in c.licence:
                assert c.commercial_use is False
    sd15 = {c.name for c in CATALOGUE["sd15"].components}
    assert {"base", "vae", "controlnet", "ip_adapter", "ip_adapter_faceid"} <= sd15


def test_download_fails_clearly_when_offline(tmp_path: Path) -> None:
    t0 = time.perf_counter()
    with pytest.raises(ModelMissingError) as err:
        # port 9 (discard) refuses at once: the same path as a host without internet
        download_model_set("sd15", tmp_path, endpoint="http://127.0.0.1:9")
    msg = str(err.value)
    assert "Could not download model set 'sd15'" in msg
    assert "stable-diffusion-v1-5/stable-diffusion-inpainting" in msg
    assert "offline host" in msg
    assert not (tmp_path / "sd15" / "manifest.json").exists()
    assert time.perf_counter() - t0 < 30
    with pytest.raises(ModelMissingError, match="Unknown model set"):
        download_model_set("nope", tmp_path)


class _FakeHub:
    """Serves a tiny repo the way huggingface_hub would: metadata with LFS sha256, then files."""

    def __init__(self, files: dict[str, bytes], *, lfs: set[str], corrupt: str | None = None):
        import hashlib
        from types import SimpleNamespace

        self.files, self.corrupt, self.downloads = files, corrupt, []
        self.siblings = []
        for name, data in files.items():
            info = SimpleNamespace(sha256=hashlib.sha256(data).hexdigest(), size=len(data))
            blob = hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()
            self.siblings.append(
                SimpleNamespace(
                    rfilename=name, size=len(data), blob_id=blob, lfs=info if name in lfs else None
                )
            )

    def api(self, endpoint=None, token=None):  # stands in for the HfApi class
        from types import SimpleNamespace

        hub = self
        return SimpleNamespace(
            model_info=lambda repo, revision, files_metadata: SimpleNamespace(
                sha="f" * 40, siblings=hub.siblings
            )
        )

    def download(self, repo, filename, *, revision, token, endpoint, local_dir):
        self.downloads.append(filename)
        data = self.files[filename]
        if filename == self.corrupt:
            data = data[:-1] + bytes([data[-1] ^ 1])
        path = Path(local_dir) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return str(path)


def _fake_catalogue(monkeypatch: pytest.MonkeyPatch, hub: _FakeHub) -> None:
    import huggingface_hub

    entry = registry.CatalogueEntry(
        kind="sd15",
        description="test",
        components=(
            registry.HubComponent(
                name="base",
                repo="org/model",
                revision="main",
                licence="non-commercial",
                commercial_use=False,
                dtype="fp32",
                files=(
                    registry.HubFile("weights.onnx", "weights.onnx"),
                    registry.HubFile("configs/info.json", "info.json"),
                ),
            ),
        ),
    )
    monkeypatch.setitem(registry.CATALOGUE, "mini", entry)
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.api)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.download)


def test_download_checks_hub_hashes_and_writes_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"weights.onnx": b"\x08\x01" * 5000, "configs/info.json": b'{"a": 1}'}
    hub = _FakeHub(files, lfs={"weights.onnx"})
    _fake_catalogue(monkeypatch, hub)
    ms = download_model_set("mini", tmp_path)
    assert ms.kind == "sd15" and ms.components["base"].source_revision == "f" * 40
    paths = {f.path: f for f in ms.files}
    assert paths["info.json"].source_path == "configs/info.json"
    assert (tmp_path / "mini" / "weights.onnx").read_bytes() == files["weights.onnx"]
    assert not (tmp_path / "mini" / ".download").exists()
    reg = ModelRegistry(tmp_path)
    reg.verify_model_set("mini", full_hash=True)
    with pytest.raises(ModelLicenceError):
        reg.assert_licence_allows("mini", commercial=True)
    # a second run keeps the finished LFS file instead of fetching it again
    hub.downloads.clear()
    download_model_set("mini", tmp_path)
    assert hub.downloads == ["configs/info.json"]


def test_download_refuses_a_file_that_does_not_match_the_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"weights.onnx": b"\x08\x01" * 5000, "configs/info.json": b'{"a": 1}'}
    _fake_catalogue(monkeypatch, _FakeHub(files, lfs={"weights.onnx"}, corrupt="weights.onnx"))
    with pytest.raises(ModelChecksumError, match="Hub LFS sha256"):
        download_model_set("mini", tmp_path)
    assert not (tmp_path / "mini" / "manifest.json").exists()
    _fake_catalogue(monkeypatch, _FakeHub(files, lfs=set(), corrupt="configs/info.json"))
    with pytest.raises(ModelChecksumError, match="git blob id"):
        download_model_set("mini", tmp_path / "other")
