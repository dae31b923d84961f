"""Tiny, randomly initialised model sets with the real classes and on-disk layouts.

Tests, CI and the default benchmark need the whole engine (loading from a model set folder,
ControlNet inpainting, IP-Adapter, FaceID, LoRA, SDXL, video) to run offline in seconds. These
sets use the same diffusers/transformers classes and folder layout as the real ones, at toy sizes,
so every code path is exercised; their images are noise, which is all a test needs.

Everything is built from ``torch.manual_seed`` so two builds write byte-identical weights.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .registry import Component, ModelSet, describe_files, write_manifest

TINY_SETS = ("tiny-sd15", "tiny-sdxl", "tiny-svd")
TINY_LICENCE = "apache-2.0"  # our own random weights

# A few words the tiny tokenizer knows whole; everything else falls back to single bytes.
_WORDS = [
    "a",
    "photo",
    "of",
    "fashion",
    "model",
    "wearing",
    "the",
    "dress",
    "top",
    "shirt",
    "skirt",
    "jacket",
    "studio",
    "white",
    "background",
    "street",
    "outdoor",
    "runway",
    "woman",
    "man",
    "young",
    "face",
    "hands",
    "fingers",
    "deformed",
    "blurry",
    "watermark",
    "text",
    "extra",
    "limbs",
    "catalog",
    "professional",
    "lighting",
]

_SEED = 0

# The toy size every tiny UNet (image and video) shares: two blocks at 32x32 latents, predicting
# 4 latent channels; the builders add only what their architecture needs on top.
_TINY_UNET: dict[str, Any] = {
    "block_out_channels": (32, 64),
    "layers_per_block": 1,
    "sample_size": 32,
    "out_channels": 4,
}


def make_tiny_models(
    model_root: Path | str, sets: Sequence[str] = TINY_SETS, *, force: bool = False
) -> dict[str, Path]:
    """Build the requested tiny sets under ``model_root``; return ``{set name: set folder}``.

    A set whose manifest already exists is left alone unless ``force``.
    """
    builders = {"tiny-sd15": _build_sd15, "tiny-sdxl": _build_sdxl, "tiny-svd": _build_svd}
    model_root = Path(model_root)
    out: dict[str, Path] = {}
    for name in sets:
        if name not in builders:
            raise ValueError(f"unknown tiny set {name!r}; choose from {', '.join(builders)}")
        set_dir = model_root / name
        if (set_dir / "manifest.json").is_file() and not force:
            out[name] = set_dir
            continue
        if set_dir.exists():
            shutil.rmtree(set_dir)
        set_dir.mkdir(parents=True)
        builders[name](set_dir)
        out[name] = set_dir
    return out


# --------------------------------------------------------------------------------------------
# Shared pieces
# --------------------------------------------------------------------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte-to-printable-character table (the base alphabet of byte-level BPE)."""
    bs = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def tiny_tokenizer(model_max_length: int = 77) -> Any:
    """A CLIP BPE tokenizer over all bytes plus whole-word merges for ``_WORDS``."""
    from transformers import CLIPTokenizer

    chars = list(_bytes_to_unicode().values())
    tokens = chars + [c + "</w>" for c in chars]
    known = set(tokens)
    merges: list[tuple[str, str]] = []
    for word in _WORDS:
        symbols = [*word[:-1], word[-1] + "</w>"]
        current = symbols[0]
        for sym in symbols[1:]:
            if (current, sym) not in merges:
                merges.append((current, sym))
            current += sym
            if current not in known:
                known.add(current)
                tokens.append(current)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def _text_encoder(tokenizer: Any, *, with_projection: bool = False, hidden: int = 32) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    config = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        projection_dim=32,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,  # the pooled output is taken at the EOS token
        pad_token_id=tokenizer.pad_token_id,
    )
    cls = CLIPTextModelWithProjection if with_projection else CLIPTextModel
    return cls(config).eval()


def _image_encoder(image_size: int = 32, patch_size: int = 4) -> Any:
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    config = CLIPVisionConfig(
        hidden_size=32,
        projection_dim=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        image_size=image_size,
        patch_size=patch_size,
    )
    return CLIPVisionModelWithProjection(config).eval()


def _vae() -> Any:
    from diffusers import AutoencoderKL

    # two blocks = a scale factor of 2 (real SD VAEs use 8); the pipelines read it from config
    return AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        latent_channels=4,
        sample_size=64,
    )


def _controlnet(unet_config: dict[str, Any], **extra: Any) -> Any:
    import torch
    from diffusers import ControlNetModel

    keys = (
        "block_out_channels",
        "down_block_types",
        "layers_per_block",
        "cross_attention_dim",
        "attention_head_dim",
        "norm_num_groups",
        "use_linear_projection",
        "transformer_layers_per_block",
        "addition_embed_type",
        "addition_time_embed_dim",
        "projection_class_embeddings_input_dim",
    )
    config = {k: unet_config[k] for k in keys if k in unet_config}
    # in_channels=4: in the inpaint pipelines the ControlNet sees the noisy latents only, not
    # the 9-channel UNet input; (16, 32) downsamples the pose image by 2, like the tiny VAE.
    cn = ControlNetModel(
        in_channels=4, conditioning_embedding_out_channels=(16, 32), **config, **extra
    )
    # real ControlNets start from zero convolutions; give them small weights so the control
    # image actually reaches the UNet in tests
    with torch.no_grad():
        for module in [*cn.controlnet_down_blocks, cn.controlnet_mid_block]:
            for p in module.parameters():
                p.normal_(0.0, 0.02)
    return cn


def _write_manifest(set_dir: Path, kind: str, groups: dict[str, dict[str, Any]]) -> None:
    """Write a manifest whose components are the listed file groups (real sha256 of each)."""
    components = {}
    for name, spec in groups.items():
        files: list[str] = []
        for pattern in spec["globs"]:
            files += [
                p.relative_to(set_dir).as_posix()
                for p in sorted(set_dir.glob(pattern))
                if p.is_file()
            ]
        components[name] = Component(
            name=name,
            licence=spec.get("licence", TINY_LICENCE),
            commercial_use=spec.get("commercial_use", True),
            dtype="fp32",
            files=describe_files(set_dir, sorted(set(files))),
            source_repo="generated:generation.inference.tiny",
            source_revision=None,
            params=spec.get("params", {}),
        )
    write_manifest(
        ModelSet(
            name=set_dir.name,
            kind=kind,
            root=set_dir,
            components=components,
            description=f"tiny random {kind} set for tests and benchmarks (images are noise)",
            install_hint="run `manage.py make_tiny_models`",
        )
    )


def _base_globs(folders: Iterable[str]) -> list[str]:
    return ["model_index.json", *(f"{f}/*" for f in folders)]


# --------------------------------------------------------------------------------------------
# IP-Adapter, FaceID and LoRA checkpoints
# --------------------------------------------------------------------------------------------


def _attn_hidden_sizes(unet: Any) -> list[tuple[str, int]]:
    """(processor name, hidden size) for each attention processor, in diffusers' order."""
    sizes = []
    block_out = list(unet.config.block_out_channels)
    for name in unet.attn_processors:
        if name.startswith("mid_block"):
            hidden = block_out[-1]
        elif name.startswith("up_blocks"):
            hidden = list(reversed(block_out))[int(name[len("up_blocks.")])]
        else:
            hidden = block_out[int(name[len("down_blocks.")])]
        sizes.append((name, hidden))
    return sizes


def _ip_adapter_layers(unet: Any, *, lora_rank: int = 0) -> dict[str, Any]:
    """The ``ip_adapter.*`` keys of an original IP-Adapter checkpoint (per-attention K/V
    projections for the image tokens, numbered like the original: attn2 layers are odd ids).
    With ``lora_rank`` it also writes FaceID's LoRA keys for every attention layer."""
    import torch

    cross = unet.config.cross_attention_dim
    out: dict[str, Any] = {}
    for key_id, (name, hidden) in enumerate(_attn_hidden_sizes(unet)):
        is_cross = name.endswith("attn2.processor")
        if is_cross:
            out[f"{key_id}.to_k_ip.weight"] = torch.randn(hidden, cross) * 0.05
            out[f"{key_id}.to_v_ip.weight"] = torch.randn(hidden, cross) * 0.05
        if lora_rank:
            kv_in = cross if is_cross else hidden
            for proj, dim_in in (
                ("to_q", hidden),
                ("to_k", kv_in),
                ("to_v", kv_in),
                ("to_out", hidden),
            ):
                out[f"{key_id}.{proj}_lora.down.weight"] = torch.randn(lora_rank, dim_in) * 0.05
                out[f"{key_id}.{proj}_lora.up.weight"] = torch.randn(hidden, lora_rank) * 0.05
    return out


def _save_ip_adapter(unet: Any, image_embed_dim: int, path: Path) -> None:
    """ip-adapter_sd15-like: ``image_proj.proj`` (image embedding -> 4 tokens) + norm."""
    import torch
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    tensors = {
        "image_proj.proj.weight": torch.randn(4 * cross, image_embed_dim) * 0.05,
        "image_proj.proj.bias": torch.zeros(4 * cross),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    tensors |= {f"ip_adapter.{k}": v for k, v in _ip_adapter_layers(unet).items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def _save_ip_adapter_faceid(unet: Any, path: Path, *, id_dim: int = 512, tokens: int = 4) -> None:
    """ip-adapter-faceid_sd15-like: a 512-d insightface embedding -> ``tokens`` tokens through
    an MLP (``proj.0``/``proj.2`` + ``norm``), plus FaceID's own LoRA on every attention layer."""
    import torch
    from safetensors.torch import save_file

    cross = unet.config.cross_attention_dim
    mult = 2
    tensors = {
        "image_proj.proj.0.weight": torch.randn(id_dim * mult, id_dim) * 0.02,
        "image_proj.proj.0.bias": torch.zeros(id_dim * mult),
        "image_proj.proj.2.weight": torch.randn(cross * tokens, id_dim * mult) * 0.02,
        "image_proj.proj.2.bias": torch.zeros(cross * tokens),
        "image_proj.norm.weight": torch.ones(cross),
        "image_proj.norm.bias": torch.zeros(cross),
    }
    tensors |= {f"ip_adapter.{k}": v for k, v in _ip_adapter_layers(unet, lora_rank=4).items()}
    save_file({k: v.contiguous() for k, v in tensors.items()}, str(path))


def _save_lora(pipeline_cls: Any, unet: Any, folder: Path, weight_name: str) -> None:
    """A style LoRA in the diffusers/peft format ``load_lora_weights`` reads."""
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    # init_lora_weights=False: random A *and* B, so the LoRA visibly changes the output
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,
    )
    unet.add_adapter(config, adapter_name="tiny_style")
    layers = get_peft_model_state_dict(unet, adapter_name="tiny_style")
    pipeline_cls.save_lora_weights(
        folder, unet_lora_layers=layers, weight_name=weight_name, safe_serialization=True
    )
    unet.delete_adapters("tiny_style")


# --------------------------------------------------------------------------------------------
# The sets
# --------------------------------------------------------------------------------------------


def _build_sd15(set_dir: Path) -> None:
    import torch
    from diffusers import (
        StableDiffusionControlNetInpaintPipeline,
        UNet2DConditionModel,
        UniPCMultistepScheduler,
    )

    torch.manual_seed(_SEED)
    unet = UNet2DConditionModel(
        **_TINY_UNET,
        in_channels=9,  # noisy latents 4 + mask 1 + masked-image latents 4
        # attention only at the lower resolution: a quarter of the tokens, ~16x cheaper on CPU
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    controlnet = _controlnet(dict(unet.config))
    tokenizer = tiny_tokenizer()
    pipe = StableDiffusionControlNetInpaintPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tokenizer),
        tokenizer=tokenizer,
        unet=unet,
        controlnet=controlnet,
        scheduler=UniPCMultistepScheduler(
            beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
        ),
        safety_checker=None,
        # no feature extractor: load_ip_adapter then builds one sized for the image encoder
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(set_dir, safe_serialization=True)

    ip_dir = set_dir / "ip_adapter"
    ip_dir.mkdir()
    image_encoder = _image_encoder()
    image_encoder.save_pretrained(ip_dir / "image_encoder", safe_serialization=True)
    _save_ip_adapter(
        unet, image_encoder.config.projection_dim, ip_dir / "ip-adapter_sd15.safetensors"
    )
    _save_ip_adapter_faceid(unet, ip_dir / "ip-adapter-faceid_sd15.safetensors")
    _save_lora(
        StableDiffusionControlNetInpaintPipeline, unet, set_dir / "loras", "tiny-style.safetensors"
    )

    _write_manifest(
        set_dir,
        "sd15",
        {
            "base": {
                "globs": _base_globs(["unet", "vae", "text_encoder", "tokenizer", "scheduler"])
            },
            "controlnet": {"globs": ["controlnet/*"]},
            "ip_adapter": {
                "globs": ["ip_adapter/ip-adapter_sd15.safetensors", "ip_adapter/image_encoder/*"],
                "params": {
                    "subfolder": "ip_adapter",
                    "weight_name": "ip-adapter_sd15.safetensors",
                    "image_encoder_folder": "image_encoder",
                },
            },
            # marked non-commercial like the real FaceID weights, so tests cover the refusal
            "ip_adapter_faceid": {
                "globs": ["ip_adapter/ip-adapter-faceid_sd15.safetensors"],
                "licence": "non-commercial",
                "commercial_use": False,
                "params": {
                    "subfolder": "ip_adapter",
                    "weight_name": "ip-adapter-faceid_sd15.safetensors",
                },
            },
            "lora": {
                "globs": ["loras/*"],
                "params": {"path": "loras/tiny-style.safetensors"},
            },
        },
    )


def _build_sdxl(set_dir: Path) -> None:
    import torch
    from diffusers import (
        EulerDiscreteScheduler,
        StableDiffusionXLControlNetInpaintPipeline,
        UNet2DConditionModel,
    )

    torch.manual_seed(_SEED)
    time_dim = 8
    text_proj_dim = 32
    unet = UNet2DConditionModel(
        **_TINY_UNET,
        in_channels=9,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_dim,
        transformer_layers_per_block=(1, 2),
        # 6 size/crop ids (no aesthetic score in the inpaint+ControlNet pipeline) + pooled text
        projection_class_embeddings_input_dim=6 * time_dim + text_proj_dim,
        cross_attention_dim=64,  # two text encoders of 32 concatenated
        norm_num_groups=32,
    )
    controlnet = _controlnet(dict(unet.config))
    tokenizer = tiny_tokenizer()
    tokenizer_2 = tiny_tokenizer()
    pipe = StableDiffusionXLControlNetInpaintPipeline(
        vae=_vae(),
        text_encoder=_text_encoder(tokenizer),
        text_encoder_2=_text_encoder(tokenizer_2, with_projection=True),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        controlnet=controlnet,
        scheduler=EulerDiscreteScheduler(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            timestep_spacing="leading",
            steps_offset=1,
        ),
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
        add_watermarker=False,
    )
    pipe.save_pretrained(set_dir, safe_serialization=True)
    _write_manifest(
        set_dir,
        "sdxl",
        {
            "base": {
                "globs": _base_globs(
                    [
                        "unet",
                        "vae",
                        "text_encoder",
                        "text_encoder_2",
                        "tokenizer",
                        "tokenizer_2",
                        "scheduler",
                    ]
                )
            },
            "controlnet": {"globs": ["controlnet/*"]},
        },
    )


def _build_svd(set_dir: Path) -> None:
    import torch
    from diffusers import (
        AutoencoderKLTemporalDecoder,
        EulerDiscreteScheduler,
        StableVideoDiffusionPipeline,
        UNetSpatioTemporalConditionModel,
    )
    from transformers import CLIPImageProcessor

    torch.manual_seed(_SEED)
    unet = UNetSpatioTemporalConditionModel(
        **_TINY_UNET,
        in_channels=8,  # noisy latents + the conditioning image latents
        down_block_types=("CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"),
        up_block_types=("UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"),
        cross_attention_dim=32,
        num_attention_heads=(4, 8),
        projection_class_embeddings_input_dim=3 * 32,  # fps, motion bucket, noise aug
        addition_time_embed_dim=32,
    )
    vae = AutoencoderKLTemporalDecoder(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        latent_channels=4,
    )
    scheduler = EulerDiscreteScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        interpolation_type="linear",
        num_train_timesteps=1000,
        prediction_type="v_prediction",
        sigma_max=700.0,
        sigma_min=0.002,
        steps_offset=1,
        timestep_spacing="leading",
        timestep_type="continuous",
        use_karras_sigmas=True,
    )
    pipe = StableVideoDiffusionPipeline(
        vae=vae,
        # the SVD pipeline always resizes the still to 224x224 for CLIP; large patches keep the
        # tiny encoder cheap at that size (7x7 tokens)
        image_encoder=_image_encoder(image_size=224, patch_size=32),
        unet=unet,
        scheduler=scheduler,
        feature_extractor=CLIPImageProcessor(crop_size=224, size=224),
    )
    pipe.save_pretrained(set_dir, safe_serialization=True)
    _write_manifest(
        set_dir,
        "svd",
        {
            "base": {
                "globs": _base_globs(
                    ["unet", "vae", "image_encoder", "feature_extractor", "scheduler"]
                )
            }
        },
    )


def main() -> None:  # pragma: no cover - convenience for `python -m generation.inference.tiny`
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model_root", type=Path)
    parser.add_argument("--sets", nargs="*", default=list(TINY_SETS))
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    built = make_tiny_models(args.model_root, args.sets, force=args.force)
    print(json.dumps({k: str(v) for k, v in built.items()}, indent=2))
    print(f"built in {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":  # pragma: no cover
    main()
