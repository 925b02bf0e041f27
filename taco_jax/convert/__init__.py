"""Checkpoint converters between taco_jax and other Tacotron 2 implementations."""

from taco_jax.convert.torch_ckpt import (
    LAYOUTS,
    T2N_LAYOUTS,
    ConversionError,
    config_from_state_dict,
    detect_layout,
    flax_to_torch,
    infer_n_mels,
    torch_adam_moments,
    torch_to_flax,
)

__all__ = [
    "LAYOUTS",
    "T2N_LAYOUTS",
    "ConversionError",
    "config_from_state_dict",
    "detect_layout",
    "flax_to_torch",
    "infer_n_mels",
    "torch_adam_moments",
    "torch_to_flax",
]
