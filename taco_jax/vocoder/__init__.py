"""HiFi-GAN neural vocoder in Flax: generator, configs, layers and files.

    from taco_jax.vocoder import load_vocoder, Generator
    config, params = load_vocoder("g_02500000")            # config.json next to it
    wav = Generator(config).apply({"params": params}, mel)  # mel [B, T, 80] -> wav [B, T * 256]

The discriminators (`discriminators`), the adversarial, feature-matching and mel losses (`losses`) and batched
inference with its real-time factor (`inference`) are modules of this package; training is `taco_jax.train_vocoder`.
"""

from taco_jax.vocoder.config import PRESETS, HifiganConfig, VocoderConfigError, load_hifigan_config
from taco_jax.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator
from taco_jax.vocoder.files import VocoderFileError, load_vocoder, save_vocoder
from taco_jax.vocoder.generator import (
    Generator,
    fold_weight_norm,
    generator_param_count,
    init_generator_params,
    output_length,
)
from taco_jax.vocoder.layers import unfold_weight_norm
from taco_jax.vocoder.losses import (
    MEL_LOSS_WEIGHT,
    discriminator_loss,
    feature_matching_loss,
    generator_adversarial_loss,
    hifigan_mel,
    mel_l1,
)

__all__ = [
    "MEL_LOSS_WEIGHT",
    "PRESETS",
    "MultiPeriodDiscriminator",
    "MultiScaleDiscriminator",
    "discriminator_loss",
    "feature_matching_loss",
    "generator_adversarial_loss",
    "hifigan_mel",
    "mel_l1",
    "Generator",
    "HifiganConfig",
    "VocoderConfigError",
    "VocoderFileError",
    "fold_weight_norm",
    "generator_param_count",
    "init_generator_params",
    "load_hifigan_config",
    "load_vocoder",
    "output_length",
    "save_vocoder",
    "unfold_weight_norm",
]
