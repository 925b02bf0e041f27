"""HiFi-GAN configuration in the published `config.json` format.

`HifiganConfig` holds the generator's shape (residual block type, upsampling rates and kernels, channels,
residual kernels and dilations), the audio front end (which must be the one the Tacotron's mels use) and the
training settings of the published recipe. `load_hifigan_config` reads a published `config.json`; `to_json`
writes one back that the published code reads too.

Keys of the published files with no meaning here (`num_gpus`, `num_workers`, `dist_config`: device count,
data loader processes, distributed backend) are accepted and dropped; `to_json` writes the published
defaults for them. Any other unknown key is an error, as are missing model/audio keys and ill-typed values;
training keys missing from a file take the published values.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from taco_jax.errors import UserError

__all__ = ["PRESETS", "HifiganConfig", "VocoderConfigError", "hifigan_config_from_dict", "load_hifigan_config"]

# Written by to_json so that the published training script can read the file; ignored on load.
IGNORED_KEYS = {
    "num_gpus": 0,
    "num_workers": 4,
    "dist_config": {"dist_backend": "nccl", "dist_url": "tcp://localhost:54321", "world_size": 1},
}
REQUIRED_KEYS = (
    "resblock", "upsample_rates", "upsample_kernel_sizes", "upsample_initial_channel", "resblock_kernel_sizes",
    "resblock_dilation_sizes", "num_mels", "n_fft", "hop_size", "win_size", "sampling_rate", "fmin", "fmax",
)  # fmt: skip


class VocoderConfigError(UserError, ValueError):
    """A vocoder config that cannot be used; the message names the file (or preset) and key."""


@dataclass(frozen=True)
class HifiganConfig:
    """A HiFi-GAN generator and its training recipe (field names and units as in the published config.json).

    resblock: "1" (three dilated conv pairs per block) or "2" (two dilated convs per block).
    upsample_rates[i] / upsample_kernel_sizes[i]: stride and kernel of the i-th transposed conv; their
    product is the hop in samples per mel frame. upsample_initial_channel: channels after the input conv,
    halved by each upsampling. resblock_kernel_sizes[j] / resblock_dilation_sizes[j]: the j-th residual block
    of every stage. Audio: num_mels, n_fft, hop_size, win_size (samples), sampling_rate (Hz), fmin/fmax (Hz;
    fmax_for_loss None = sampling_rate / 2 for the training loss mel). segment_size: training clip length
    in samples. Adam: learning_rate, adam_b1, adam_b2; lr_decay: per-epoch exponential decay.
    """

    resblock: str
    upsample_rates: tuple[int, ...]
    upsample_kernel_sizes: tuple[int, ...]
    upsample_initial_channel: int
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    num_mels: int = 80
    num_freq: int = 1025
    n_fft: int = 1024
    hop_size: int = 256
    win_size: int = 1024
    sampling_rate: int = 22050
    fmin: float = 0
    fmax: float | None = 8000
    fmax_for_loss: float | None = None
    segment_size: int = 8192
    batch_size: int = 16
    learning_rate: float = 0.0002
    adam_b1: float = 0.8
    adam_b2: float = 0.99
    lr_decay: float = 0.999
    seed: int = 1234

    def __post_init__(self) -> None:
        problem = _shape_problem(self)
        if problem is not None:
            raise VocoderConfigError(f"HiFi-GAN config: {problem}")

    @property
    def hop_length(self) -> int:
        """Waveform samples per mel frame: the product of the upsampling rates (== hop_size)."""
        return math.prod(self.upsample_rates)

    @property
    def num_kernels(self) -> int:
        """Residual blocks per upsampling stage."""
        return len(self.resblock_kernel_sizes)

    def stage_channels(self, i: int) -> int:
        """Channels after the i-th upsampling (0-based): upsample_initial_channel // 2**(i + 1)."""
        return self.upsample_initial_channel // 2 ** (i + 1)

    def replace(self, **changes: Any) -> HifiganConfig:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """The published config.json contents (lists, not tuples), readable by the published code too."""
        out: dict[str, Any] = {"resblock": self.resblock, "num_gpus": IGNORED_KEYS["num_gpus"]}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "resblock_dilation_sizes":
                value = [list(d) for d in value]
            elif isinstance(value, tuple):
                value = list(value)
            out.setdefault(f.name, value)
        out["num_workers"] = IGNORED_KEYS["num_workers"]
        out["dist_config"] = dict(IGNORED_KEYS["dist_config"])
        return out


def _shape_problem(c: HifiganConfig) -> str | None:
    """What makes `c` an impossible generator, or None."""
    n_ups = len(c.upsample_rates)
    if c.resblock not in ("1", "2"):
        return f"resblock: {c.resblock!r} is neither '1' nor '2'"
    if n_ups == 0 or len(c.upsample_kernel_sizes) != n_ups:
        return (
            f"upsample_rates {list(c.upsample_rates)} and upsample_kernel_sizes {list(c.upsample_kernel_sizes)} "
            "must be non-empty and of one length"
        )
    if any(r < 1 for r in c.upsample_rates) or any(k < 1 for k in c.upsample_kernel_sizes):
        return "upsample_rates and upsample_kernel_sizes must be positive"
    if c.upsample_initial_channel % 2**n_ups or c.upsample_initial_channel <= 0:
        return f"upsample_initial_channel {c.upsample_initial_channel} is not a positive multiple of 2**{n_ups}"
    if not c.resblock_kernel_sizes or len(c.resblock_dilation_sizes) != len(c.resblock_kernel_sizes):
        return "resblock_kernel_sizes and resblock_dilation_sizes must be non-empty and of one length"
    n_dil = 3 if c.resblock == "1" else 2
    if any(len(d) != n_dil for d in c.resblock_dilation_sizes):
        return f"resblock_dilation_sizes: resblock {c.resblock} takes {n_dil} dilations per block"
    if c.hop_length != c.hop_size:
        return f"the product of upsample_rates {list(c.upsample_rates)} is {c.hop_length}, not hop_size {c.hop_size}"
    return None


def _check_type(value: Any, kind: str) -> Any:
    """`value` converted to `kind` ("int", "float", "float?", "ints", "intss", "resblock"), or TypeError."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if kind == "int" and is_int:
        return value
    if kind in ("float", "float?") and (is_int or isinstance(value, float)):
        return value
    if kind == "float?" and value is None:
        return None
    if kind == "resblock" and (value in ("1", "2") or value in (1, 2)) and not isinstance(value, bool):
        return str(value)
    if kind == "ints" and isinstance(value, list | tuple):
        return tuple(_check_type(v, "int") for v in value)
    if kind == "intss" and isinstance(value, list | tuple):
        return tuple(_check_type(v, "ints") for v in value)
    raise TypeError(f"expected {_KIND_TEXT[kind]}, got {json.dumps(value) if _jsonable(value) else type(value)}")


_KIND_TEXT = {
    "int": "an integer",
    "float": "a number",
    "float?": "a number or null",
    "ints": "a list of integers",
    "intss": "a list of lists of integers",
    "resblock": '"1" or "2"',
}
_KINDS = {
    "resblock": "resblock",
    "upsample_rates": "ints",
    "upsample_kernel_sizes": "ints",
    "resblock_kernel_sizes": "ints",
    "resblock_dilation_sizes": "intss",
    "fmin": "float",
    "fmax": "float?",
    "fmax_for_loss": "float?",
    "learning_rate": "float",
    "adam_b1": "float",
    "adam_b2": "float",
    "lr_decay": "float",
}


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def hifigan_config_from_dict(data: Mapping[str, Any], source: str = "config") -> HifiganConfig:
    """A HifiganConfig from published config.json contents; `source` (a file name) prefixes every error."""
    if not isinstance(data, Mapping):
        raise VocoderConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(HifiganConfig)}
    unknown = sorted(k for k in data if k not in names and k not in IGNORED_KEYS)
    if unknown:
        raise VocoderConfigError(f"{source}: unknown key(s) {', '.join(unknown)} (not a HiFi-GAN config.json key)")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise VocoderConfigError(f"{source}: missing key(s) {', '.join(missing)}")
    values = {}
    for name in names & set(data):
        try:
            values[name] = _check_type(data[name], _KINDS.get(name, "int"))
        except TypeError as e:
            raise VocoderConfigError(f"{source}: key {name}: {e}") from None
    try:
        return HifiganConfig(**values)
    except VocoderConfigError as e:
        raise VocoderConfigError(f"{source}: {str(e).removeprefix('HiFi-GAN config: ')}") from None


def load_hifigan_config(path: str | os.PathLike) -> HifiganConfig:
    """Read a published-format HiFi-GAN config.json; errors name the file and the key."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise VocoderConfigError(f"{path}: no such HiFi-GAN config file") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise VocoderConfigError(f"{path}: not valid JSON: {e}") from None
    return hifigan_config_from_dict(data, str(path))


def _preset(resblock: str, rates, kernels, channels, res_kernels, dilations) -> HifiganConfig:
    return HifiganConfig(
        resblock=resblock,
        upsample_rates=tuple(rates),
        upsample_kernel_sizes=tuple(kernels),
        upsample_initial_channel=channels,
        resblock_kernel_sizes=tuple(res_kernels),
        resblock_dilation_sizes=tuple(tuple(d) for d in dilations),
    )


# The published generator configurations (22050 Hz, hop 256, 80 mels).
PRESETS: dict[str, HifiganConfig] = {
    "v1": _preset("1", [8, 8, 2, 2], [16, 16, 4, 4], 512, [3, 7, 11], [[1, 3, 5]] * 3),
    "v2": _preset("1", [8, 8, 2, 2], [16, 16, 4, 4], 128, [3, 7, 11], [[1, 3, 5]] * 3),
    "v3": _preset("2", [8, 8, 4], [16, 16, 8], 256, [3, 5, 7], [[1, 2], [2, 6], [3, 12]]),
}
