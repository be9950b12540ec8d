"""Random-weight Wan (VACE too), LTX-Video and LTX-2 pipelines, for tests and benchmarks; never
for serving.

``build_pipeline(arch)`` makes a pipeline of a supported architecture with random weights and
an offline tokenizer (a small Unigram vocabulary built in code: no hub access), either tiny
(tests: a few hundred kB, milliseconds per step on a CPU) or at full size (benchmarks where no
weights are downloaded). ``save_pipeline`` writes it as a diffusers folder that the engines
load through their normal path. Needs the ``gpu`` extra.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import torch

__all__ = ["ARCHS", "Arch", "build_pipeline", "offline_tokenizer", "save_pipeline"]

Arch = Literal[
    "tiny-wan-ti2v",
    "tiny-wan-t2v",
    "tiny-wan-i2v",
    "tiny-wan-vace",
    "tiny-ltx",
    "tiny-ltx2",
    "wan2.1-1.3b",
    "wan2.2-ti2v-5b",
    "ltx-2b",
    "ltx2-19b",
]
ARCHS: Final[tuple[Arch, ...]] = (
    "tiny-wan-ti2v",
    "tiny-wan-t2v",
    "tiny-wan-i2v",
    "tiny-wan-vace",
    "tiny-ltx",
    "tiny-ltx2",
    "wan2.1-1.3b",
    "wan2.2-ti2v-5b",
    "ltx-2b",
    "ltx2-19b",
)

_WORDS: Final = "a the cat dog on beach video of in and at sunset running sea light city".split()

# --- tiny configs (from diffusers' own pipeline tests, T5 tokenizer replaced) ---------------
_TINY_T5: Final[Mapping[str, Any]] = {
    "d_model": 32,
    "d_kv": 8,
    "d_ff": 64,
    "num_layers": 2,
    "num_heads": 4,
    "relative_attention_num_buckets": 8,
    "dropout_rate": 0.0,
    "feed_forward_proj": "gated-gelu",
    "pad_token_id": 0,
    "eos_token_id": 1,
    "decoder_start_token_id": 0,
}
_TINY_WAN_DIT: Final[Mapping[str, Any]] = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,
    "text_dim": 32,
    "freq_dim": 256,
    "ffn_dim": 32,
    "num_layers": 2,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 32,
}
#: VACE's control branch: video latents (16 + 16 channels) and the 8x8 mask (64).
_TINY_VACE: Final[Mapping[str, Any]] = {
    "num_layers": 3,
    "vace_layers": [0, 2],
    "vace_in_channels": 96,
}
_TINY_WAN_VAE: Final[Mapping[str, Any]] = {
    "base_dim": 3,
    "dim_mult": [1, 1, 1, 1],
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],
}
_TINY_LTX_DIT: Final[Mapping[str, Any]] = {
    "in_channels": 8,
    "out_channels": 8,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 4,
    "attention_head_dim": 8,
    "cross_attention_dim": 32,
    "num_layers": 1,
    "caption_channels": 32,
}
_TINY_LTX_VAE: Final[Mapping[str, Any]] = {
    "latent_channels": 8,
    "block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8, 8),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1, 1),
    "spatio_temporal_scaling": (True, True, False, False),
    "decoder_spatio_temporal_scaling": (True, True, False, False),
    "decoder_inject_noise": (False,) * 5,
    "upsample_residual": (False,) * 4,
    "upsample_factor": (1, 1, 1, 1),
    "timestep_conditioning": False,
    "patch_size": 1,
    "patch_size_t": 1,
}
_TINY_CLIP: Final[Mapping[str, Any]] = {
    "hidden_size": 4,
    "projection_dim": 4,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "image_size": 32,
    "intermediate_size": 16,
    "patch_size": 1,
}
# --- full-size configs (parameter counts checked against the published models) -------------
_XXL_T5: Final[Mapping[str, Any]] = {
    "d_model": 4096,
    "d_kv": 64,
    "d_ff": 10240,
    "num_layers": 24,
    "num_heads": 64,
    "feed_forward_proj": "gated-gelu",
    "dropout_rate": 0.0,
    "pad_token_id": 0,
    "eos_token_id": 1,
}
_WAN_1_3B: Final[Mapping[str, Any]] = {"num_attention_heads": 12, "ffn_dim": 8960, "num_layers": 30}
_WAN_5B: Final[Mapping[str, Any]] = {
    "num_attention_heads": 24,
    "in_channels": 48,
    "out_channels": 48,
    "ffn_dim": 14336,
    "num_layers": 30,
}
_WAN_22_VAE: Final[Mapping[str, Any]] = {
    "base_dim": 160,
    "decoder_base_dim": 256,
    "z_dim": 48,
    "is_residual": True,
    "in_channels": 12,
    "out_channels": 12,
    "patch_size": 2,
    "scale_factor_spatial": 16,
    "scale_factor_temporal": 4,
    "latents_mean": [0.0] * 48,
    "latents_std": [1.0] * 48,
}


def offline_tokenizer() -> Any:
    """A small T5-style tokenizer built in code (pad/eos/unk = 0/1/2, like T5)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import T5TokenizerFast

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + word, -3.0) for word in _WORDS]
    pieces += [(c, -5.0) for c in string.ascii_letters + string.digits + string.punctuation]
    backend = Tokenizer(models.Unigram(pieces, unk_id=2, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", 1)]
    )
    return T5TokenizerFast(
        tokenizer_object=backend,
        extra_ids=0,
        pad_token="<pad>",
        eos_token="</s>",
        unk_token="<unk>",
    )


def build_pipeline(
    arch: Arch,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> Any:
    """A pipeline of ``arch`` with random weights, built on ``device`` (then cast to ``dtype``)."""
    import torch
    from diffusers import (
        AutoencoderKLLTXVideo,
        AutoencoderKLWan,
        FlowMatchEulerDiscreteScheduler,
        LTXPipeline,
        LTXVideoTransformer3DModel,
        UniPCMultistepScheduler,
        WanImageToVideoPipeline,
        WanPipeline,
        WanTransformer3DModel,
        WanVACEPipeline,
        WanVACETransformer3DModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        CLIPVisionModel,
        T5Config,
        T5EncoderModel,
        UMT5Config,
        UMT5EncoderModel,
    )

    torch.manual_seed(seed)
    if "ltx2" in arch:
        from reel.engines.diffusers.tiny_ltx2 import build_ltx2

        default = torch.get_default_dtype()
        if dtype is not None:  # build in the target dtype: full size never exists in float32
            torch.set_default_dtype(dtype)
        try:
            with torch.device(device):
                return build_ltx2(tiny=arch.startswith("tiny-"))
        finally:
            torch.set_default_dtype(default)
    tokenizer = offline_tokenizer()
    tiny = arch.startswith("tiny-")
    with torch.device(device):
        if "ltx" in arch:
            t5 = (
                {**_TINY_T5, "vocab_size": len(tokenizer)}
                if tiny
                else {**_XXL_T5, "vocab_size": 32128}
            )
            vae = AutoencoderKLLTXVideo(**(_TINY_LTX_VAE if tiny else {}))
            pipe = LTXPipeline(
                tokenizer=tokenizer,
                text_encoder=T5EncoderModel(T5Config(**t5)).eval(),
                vae=vae,
                transformer=LTXVideoTransformer3DModel(**(_TINY_LTX_DIT if tiny else {})),
                scheduler=FlowMatchEulerDiscreteScheduler(),
            )
        else:
            ti2v = "ti2v" in arch
            t5 = (
                {**_TINY_T5, "vocab_size": len(tokenizer)}
                if tiny
                else {**_XXL_T5, "vocab_size": 256384}
            )
            if tiny:
                dit = {
                    **_TINY_WAN_DIT,
                    "in_channels": 48 if ti2v else 16,
                    "out_channels": 48 if ti2v else 16,
                }
                vae_cfg: Mapping[str, Any] = {
                    **_TINY_WAN_VAE,
                    **(_tiny_wan22_vae() if ti2v else {"z_dim": 16}),
                }
            else:
                dit = dict(_WAN_5B if ti2v else _WAN_1_3B)
                vae_cfg = _WAN_22_VAE if ti2v else {}
            modules: dict[str, Any] = {
                "tokenizer": tokenizer,
                "text_encoder": UMT5EncoderModel(UMT5Config(**t5)).eval(),
                "vae": AutoencoderKLWan(**vae_cfg),
                "scheduler": UniPCMultistepScheduler(
                    prediction_type="flow_prediction",
                    use_flow_sigmas=True,
                    flow_shift=5.0 if ti2v else 3.0,
                ),
            }
            if arch == "tiny-wan-i2v":  # Wan 2.1 image-to-video: a CLIP image encoder
                pipe = WanImageToVideoPipeline(
                    **modules,
                    transformer=WanTransformer3DModel(**{**dit, "in_channels": 36, "image_dim": 4}),
                    image_encoder=CLIPVisionModel(CLIPVisionConfig(**_TINY_CLIP)).eval(),
                    image_processor=CLIPImageProcessor(crop_size=32, size=32),
                )
            elif arch == "tiny-wan-vace":  # Wan 2.1 VACE: a control branch on two blocks
                pipe = WanVACEPipeline(
                    **modules,
                    transformer=WanVACETransformer3DModel(**{**dit, **_TINY_VACE}),
                )
            else:
                pipe = WanPipeline(
                    **modules, transformer=WanTransformer3DModel(**dit), expand_timesteps=ti2v
                )
    if dtype is not None:
        pipe.to(dtype=dtype)
    return pipe


def _tiny_wan22_vae() -> dict[str, Any]:
    return {
        "z_dim": 48,
        "in_channels": 12,
        "out_channels": 12,
        "is_residual": True,
        "patch_size": 2,
        "latents_mean": [0.0] * 48,
        "latents_std": [1.0] * 48,
        "scale_factor_spatial": 16,
        "scale_factor_temporal": 4,
    }


def save_pipeline(pipe: Any, path: Path, *, max_shard_size: str | None = None) -> Path:
    """Write ``pipe`` as a diffusers folder (safetensors) at ``path``."""
    kwargs = {} if max_shard_size is None else {"max_shard_size": max_shard_size}
    pipe.save_pretrained(str(path), safe_serialization=True, **kwargs)
    return path
