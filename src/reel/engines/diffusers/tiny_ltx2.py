"""Random-weight LTX-2 pipelines (through ``tiny.build_pipeline``) and latent upsamplers.

Tiny sizes follow diffusers' LTX-2 tests, with a VAE on the real 32x spatial / 8x temporal
grid and an audio path whose vocoder upsamples by the mel hop, so a clip's sound lasts as
long as its video (16 samples per mel frame at 1600 Hz instead of 160 at 16 kHz). The
tokenizer is built in code: no hub access. Needs the ``gpu`` extra.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["build_ltx2", "build_upsampler", "gemma_tokenizer"]

_WORDS: Final = "a the cat dog on beach video of in and at sunset running sea light city".split()

_TINY_GEMMA3_TEXT: Final[Mapping[str, Any]] = {
    "hidden_size": 32,
    "intermediate_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "num_key_value_heads": 1,
    "head_dim": 16,
    "max_position_embeddings": 256,
    "sliding_window": 64,
}
_TINY_SIGLIP: Final[Mapping[str, Any]] = {
    "hidden_size": 16,
    "intermediate_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
}
#: Gemma 3 12B, LTX-2's text encoder.
_GEMMA3_12B_TEXT: Final[Mapping[str, Any]] = {
    "vocab_size": 262208,
    "hidden_size": 3840,
    "intermediate_size": 15360,
    "num_hidden_layers": 48,
    "num_attention_heads": 16,
    "num_key_value_heads": 8,
    "head_dim": 256,
}
_TINY_LTX2_DIT: Final[Mapping[str, Any]] = {
    "in_channels": 4,
    "out_channels": 4,
    "patch_size": 1,
    "patch_size_t": 1,
    "num_attention_heads": 2,
    "attention_head_dim": 8,
    "cross_attention_dim": 16,
    "audio_in_channels": 4,
    "audio_out_channels": 4,
    "audio_num_attention_heads": 2,
    "audio_attention_head_dim": 4,
    "audio_cross_attention_dim": 8,
    "num_layers": 2,
    "qk_norm": "rms_norm_across_heads",
    "caption_channels": 32,
    "rope_double_precision": False,
    "rope_type": "split",
}
_TINY_LTX2_CONNECTORS: Final[Mapping[str, Any]] = {
    "caption_channels": 32,
    "text_proj_in_factor": 3,  # text encoder layers + 1
    "video_connector_num_attention_heads": 4,
    "video_connector_attention_head_dim": 8,
    "video_connector_num_layers": 1,
    "video_connector_num_learnable_registers": None,
    "audio_connector_num_attention_heads": 4,
    "audio_connector_attention_head_dim": 8,
    "audio_connector_num_layers": 1,
    "audio_connector_num_learnable_registers": None,
    "connector_rope_base_seq_len": 32,
    "rope_theta": 10000.0,
    "rope_double_precision": False,
    "causal_temporal_positioning": False,
    "rope_type": "split",
}
_TINY_LTX2_VAE: Final[Mapping[str, Any]] = {
    "latent_channels": 4,
    "block_out_channels": (8, 8, 8, 8),
    "decoder_block_out_channels": (8, 8, 8),
    "layers_per_block": (1, 1, 1, 1, 1),
    "decoder_layers_per_block": (1, 1, 1, 1),
    "decoder_inject_noise": (False,) * 4,
    "upsample_residual": (False,) * 3,
    "upsample_factor": (1, 1, 1),
    "decoder_spatial_padding_mode": "zeros",
}
_TINY_LTX2_AUDIO_VAE: Final[Mapping[str, Any]] = {
    "base_channels": 4,
    "output_channels": 2,
    "ch_mult": (1,),
    "num_res_blocks": 1,
    "attn_resolutions": None,
    "in_channels": 2,
    "resolution": 32,
    "latent_channels": 2,
    "norm_type": "pixel",
    "causality_axis": "height",
    "dropout": 0.0,
    "mid_block_add_attention": False,
    "sample_rate": 1600,
    "mel_hop_length": 16,
    "is_causal": True,
    "mel_bins": 8,
}
_TINY_LTX2_VOCODER: Final[Mapping[str, Any]] = {
    "in_channels": 16,  # audio VAE output channels x mel bins
    "hidden_channels": 32,
    "out_channels": 2,
    "upsample_kernel_sizes": [8, 8],
    "upsample_factors": [4, 4],
    "resnet_kernel_sizes": [3],
    "resnet_dilations": [[1, 3, 5]],
    "leaky_relu_negative_slope": 0.1,
    "output_sampling_rate": 1600,
}


def gemma_tokenizer() -> Any:
    """A small Gemma-style tokenizer built in code (pad/eos/bos/unk = 0/1/2/3)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GemmaTokenizerFast

    pieces = [("<pad>", 0.0), ("<eos>", 0.0), ("<bos>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + word, -3.0) for word in _WORDS]
    pieces += [(c, -5.0) for c in string.ascii_letters + string.digits + string.punctuation]
    backend = Tokenizer(models.Unigram(pieces, unk_id=3, byte_fallback=False))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    return GemmaTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        eos_token="<eos>",
        bos_token="<bos>",
        unk_token="<unk>",
    )


def build_ltx2(*, tiny: bool) -> Any:
    """An ``LTX2Pipeline``: tiny, or LTX-2's full architecture (19B + Gemma 3 12B)."""
    from diffusers import (
        AutoencoderKLLTX2Audio,
        AutoencoderKLLTX2Video,
        FlowMatchEulerDiscreteScheduler,
        LTX2Pipeline,
        LTX2VideoTransformer3DModel,
    )
    from diffusers.pipelines.ltx2.connectors import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import Gemma3Config, Gemma3ForConditionalGeneration

    tokenizer = gemma_tokenizer()
    text = {**_TINY_GEMMA3_TEXT, "vocab_size": len(tokenizer)} if tiny else _GEMMA3_12B_TEXT
    config = Gemma3Config(
        text_config=dict(text),
        vision_config=dict(_TINY_SIGLIP) if tiny else None,
        mm_tokens_per_image=4 if tiny else 256,
    )
    grid: dict[str, Any] = {"spatial_compression_ratio": 32, "temporal_compression_ratio": 8}
    return LTX2Pipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=AutoencoderKLLTX2Video(**(_TINY_LTX2_VAE if tiny else {}), **grid),
        audio_vae=AutoencoderKLLTX2Audio(**(_TINY_LTX2_AUDIO_VAE if tiny else {})),
        text_encoder=Gemma3ForConditionalGeneration(config).eval(),
        tokenizer=tokenizer,
        connectors=LTX2TextConnectors(**(_TINY_LTX2_CONNECTORS if tiny else {})),
        transformer=LTX2VideoTransformer3DModel(**(_TINY_LTX2_DIT if tiny else {})),
        vocoder=LTX2Vocoder(**(_TINY_LTX2_VOCODER if tiny else {})),
    )


def build_upsampler(*, tiny: bool = True) -> Any:
    """A random-weight LTX-2 latent upsampler (x2 spatial), tiny or full size."""
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    kwargs: dict[str, Any] = (
        {"in_channels": 4, "mid_channels": 32, "num_blocks_per_stage": 1} if tiny else {}
    )
    return LTX2LatentUpsamplerModel(**kwargs)
