"""A tiny random-weight Stable Audio pipeline, for tests of the ambience track; never for serving.

The components follow diffusers' own Stable Audio tests, with an offline T5 tokenizer (built in
code: no hub access) and a longer clip: 8 s a call at 2048 Hz (512 latent frames, 32 samples
each), so a 10 s video needs two pieces. Save it with
:func:`reel.engines.diffusers.tiny.save_pipeline`; the engines load it through their normal
path. Needs the ``gpu`` extra.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["TINY_AUDIO_RATE", "build_stable_audio"]

#: The tiny model's sample rate (Hz); one call makes at most 512 * 32 / 2048 = 8 s.
TINY_AUDIO_RATE: Final = 2048


def build_stable_audio(*, seed: int = 0) -> Any:
    """A ``StableAudioPipeline`` with random weights, under 2 MB."""
    import torch
    from diffusers import (
        AutoencoderOobleck,
        EDMDPMSolverMultistepScheduler,
        StableAudioDiTModel,
        StableAudioPipeline,
        StableAudioProjectionModel,
    )
    from transformers import T5Config, T5EncoderModel

    from reel.engines.diffusers.ambience import quiet_oobleck
    from reel.engines.diffusers.tiny import _TINY_T5, offline_tokenizer

    torch.manual_seed(seed)
    tokenizer = offline_tokenizer()
    tokenizer.model_max_length = 32  # the pipeline pads every prompt to this length
    text_encoder = T5EncoderModel(T5Config(**{**_TINY_T5, "vocab_size": len(tokenizer)})).eval()
    with quiet_oobleck():
        vae = AutoencoderOobleck(
            encoder_hidden_size=6,
            downsampling_ratios=[4, 8],
            decoder_channels=3,
            decoder_input_channels=3,
            audio_channels=2,
            channel_multiples=[2, 4],
            sampling_rate=TINY_AUDIO_RATE,
        )
    return StableAudioPipeline(
        tokenizer=tokenizer,
        text_encoder=text_encoder,
        projection_model=StableAudioProjectionModel(
            text_encoder_dim=text_encoder.config.d_model,
            conditioning_dim=4,
            min_value=0,
            max_value=32,
        ),
        transformer=StableAudioDiTModel(
            sample_size=512,
            in_channels=3,
            num_layers=2,
            attention_head_dim=4,
            num_key_value_attention_heads=2,
            out_channels=3,
            cross_attention_dim=4,
            time_proj_dim=8,
            global_states_input_dim=8,
            cross_attention_input_dim=4,
        ),
        vae=vae,
        # Stable Audio Open's own scheduler (the cosine one) needs torchsde; this one does not.
        scheduler=EDMDPMSolverMultistepScheduler(
            solver_order=2,
            prediction_type="v_prediction",
            sigma_data=1.0,
            sigma_schedule="exponential",
        ),
    )
