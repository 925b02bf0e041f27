"""Checkpoint converters between taco_jax and other Tacotron 2 implementations.

`torch_ckpt` maps state_dict tensors to Flax variables and back; `checkpoint_io` converts whole files
(.pt <-> taco_jax checkpoint directories); `hifigan` converts HiFi-GAN generator state_dicts and g_ files.
`tools/convert_torch_ckpt.py` is the command line over `checkpoint_io` and `hifigan`.
"""

from taco_jax.convert.checkpoint_io import (
    CheckpointFileError,
    build_config,
    load_torch_checkpoint,
    taco_jax_to_torch,
    torch_to_taco_jax,
)
from taco_jax.convert.hifigan import (
    hifigan_flax_to_torch,
    hifigan_torch_to_flax,
    read_hifigan_generator,
    write_hifigan_generator,
)
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
    "CheckpointFileError",
    "ConversionError",
    "build_config",
    "config_from_state_dict",
    "detect_layout",
    "flax_to_torch",
    "hifigan_flax_to_torch",
    "hifigan_torch_to_flax",
    "infer_n_mels",
    "load_torch_checkpoint",
    "read_hifigan_generator",
    "taco_jax_to_torch",
    "torch_adam_moments",
    "torch_to_flax",
    "torch_to_taco_jax",
    "write_hifigan_generator",
]
