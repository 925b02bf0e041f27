"""HiFi-GAN generator checkpoints: PyTorch state_dict <-> taco_jax vocoder params, and the g_ files holding them.

A published generator file (`g_XXXXXXXX`, or any .pt) is `torch.save({'generator': state_dict})`. Its keys
are the PyTorch module names `conv_pre`, `ups.{i}`, `resblocks.{n}.convs1.{m}` / `.convs2.{m}` (resblock "1")
or `.convs.{m}` (resblock "2") and `conv_post`, each with `bias` and a weight in one of three spellings:
  `weight_g` + `weight_v`                          (torch.nn.utils.weight_norm, as published)
  `parametrizations.weight.original0` + `original1` (the parametrize-based weight_norm of newer PyTorch: g, v)
  `weight`                                         (after remove_weight_norm)
The taco_jax params use the same names with `_` for `.` (`ups_0`, `resblocks_3/convs1_2`) and the same
tensor layouts (taco_jax.vocoder.layers), so conversion renames and, for plain weights, folds
weight = g * v / ||v||. Export writes the published spelling (weight_g / weight_v), loadable with
`load_state_dict(strict=True)` by a weight-normed PyTorch generator of the same config.

torch is imported inside the file functions only.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from taco_jax.convert.checkpoint_io import CheckpointFileError, read_torch_file
from taco_jax.convert.torch_ckpt import ConversionError
from taco_jax.files import atomic_output

__all__ = [
    "GENERATOR_KEY",
    "hifigan_flax_to_torch",
    "hifigan_torch_to_flax",
    "read_hifigan_generator",
    "write_hifigan_generator",
]

GENERATOR_KEY = "generator"  # the entry of a published g_ file holding the generator's state_dict
DISCRIMINATOR_KEYS = ("mpd", "msd")  # entries of a published do_ file (discriminators + optimizers)
WEIGHT_SPELLINGS = (
    ("weight_g", "weight_v"),
    ("parametrizations.weight.original0", "parametrizations.weight.original1"),
    ("weight",),
)


def _modules(config) -> dict[str, tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]]:
    """PyTorch module name -> (Flax path, weight shape, bias shape) of every conv of `config`'s generator."""
    import jax
    import jax.numpy as jnp

    from taco_jax.vocoder.generator import Generator

    mel = jax.ShapeDtypeStruct((1, 2, config.num_mels), jnp.float32)
    shapes = jax.eval_shape(Generator(config).init, jax.random.PRNGKey(0), mel)["params"]
    out = {}

    def walk(node: Mapping, path: tuple[str, ...]) -> None:
        if "kernel" in node:
            torch_name = ".".join(re.sub(r"_(\d+)$", r".\1", part) for part in path)  # ups_0 -> ups.0
            out[torch_name] = (path, tuple(node["kernel"].shape), tuple(node["bias"].shape))
            return
        for key in sorted(node, key=lambda k: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", k)]):
            walk(node[key], (*path, key))

    walk(shapes, ())
    return out


def _g_shape(weight_shape: tuple[int, ...]) -> tuple[int, ...]:
    return (weight_shape[0],) + (1,) * (len(weight_shape) - 1)


def _shape(value: Any) -> tuple[int, ...] | None:
    shape = getattr(value, "shape", None)
    return None if shape is None else tuple(int(n) for n in shape)


def _match(state_dict: Mapping[str, Any], name: str, w_shape, b_shape, problems: dict[str, list[str]]):
    """The (spelling, arrays) of module `name` in `state_dict`, recording missing/mis-shaped keys in
    `problems`; returns the keys it claimed (so that the rest are unexpected)."""
    spelling = next((s for s in WEIGHT_SPELLINGS if any(f"{name}.{k}" in state_dict for k in s)), None)
    spelling = spelling or WEIGHT_SPELLINGS[0]  # none there: report the published spelling as missing
    expected = {f"{name}.bias": b_shape}
    if len(spelling) == 2:
        expected[f"{name}.{spelling[0]}"] = _g_shape(w_shape)
        expected[f"{name}.{spelling[1]}"] = w_shape
    else:
        expected[f"{name}.weight"] = w_shape
    found = {}
    for key, shape in expected.items():
        if key not in state_dict:
            problems["missing"].append(key)
            continue
        got = _shape(state_dict[key])
        if got != shape:
            problems["shape"].append(f"{key}: expected {shape}, got {got if got is not None else 'no array'}")
        else:
            found[key] = np.asarray(state_dict[key], np.float32)
    return spelling, found, set(expected)


def hifigan_torch_to_flax(
    state_dict: Mapping[str, Any], config, weight_norm: bool = False, *, source: str = "state_dict"
) -> dict[str, Any]:
    """A HiFi-GAN generator state_dict (key -> array) -> taco_jax `Generator(config, weight_norm)` params.

    Any weight spelling is accepted (see the module docstring). weight_norm=False folds g and v into `kernel`;
    True keeps `v` and `g` (a plain `weight` becomes v = weight, g = ||weight||, as PyTorch's weight_norm
    wraps a layer). Every missing, unexpected and mis-shaped key is listed in one ConversionError, prefixed
    by `source` (the file name).
    """
    import jax.numpy as jnp

    from taco_jax.vocoder.layers import weight_norm_g

    problems: dict[str, list[str]] = {"missing": [], "shape": []}
    claimed: set[str] = set()
    params: dict[str, Any] = {}
    for name, (path, w_shape, b_shape) in _modules(config).items():
        spelling, found, keys = _match(state_dict, name, w_shape, b_shape, problems)
        claimed |= keys
        if len(found) != len(keys):
            continue
        bias = jnp.asarray(found[f"{name}.bias"])
        if len(spelling) == 2:
            g, v = jnp.asarray(found[f"{name}.{spelling[0]}"]), jnp.asarray(found[f"{name}.{spelling[1]}"])
        else:
            v = jnp.asarray(found[f"{name}.weight"])
            g = weight_norm_g(v)
        leaf = {"v": v, "g": g, "bias": bias} if weight_norm else {"kernel": _fold(v, g, spelling), "bias": bias}
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = leaf
    unexpected = sorted(k for k in state_dict if k not in claimed)
    if problems["missing"] or unexpected or problems["shape"]:
        labelled = (("missing", problems["missing"]), ("unexpected", unexpected), ("mis-shaped", problems["shape"]))
        parts = [f"{label} ({len(keys)}): {', '.join(keys)}" for label, keys in labelled if keys]
        raise ConversionError(
            f"{source}: not a HiFi-GAN generator of this config (resblock {config.resblock}, upsample_rates "
            f"{list(config.upsample_rates)}, upsample_initial_channel {config.upsample_initial_channel}): "
            + "; ".join(parts)
        )
    return params


def _fold(v, g, spelling: tuple[str, ...]):
    """The plain weight: g * v / ||v||, or v itself when the file already held a plain weight."""
    from taco_jax.vocoder.layers import weight_norm_weight

    return v if len(spelling) == 1 else weight_norm_weight(v, g)


def hifigan_flax_to_torch(params: Mapping[str, Any], config) -> dict[str, np.ndarray]:
    """taco_jax generator params (plain or weight-normed) -> the published state_dict (key -> float32 numpy):
    `<module>.weight_g`, `.weight_v`, `.bias`. A plain kernel is exported as v = kernel, g = ||kernel||."""
    import jax.numpy as jnp

    from taco_jax.vocoder.layers import weight_norm_g

    out: dict[str, np.ndarray] = {}
    problems = []
    for name, (path, w_shape, b_shape) in _modules(config).items():
        node: Any = params
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if not isinstance(node, Mapping) or not ({"kernel", "bias"} <= set(node) or {"v", "g", "bias"} <= set(node)):
            problems.append(f"{'/'.join(path)}: missing or incomplete")
            continue
        # np.array copies: writable arrays (torch.from_numpy warns on JAX's read-only buffers).
        v = np.array(node["v"] if "v" in node else node["kernel"], np.float32)
        g = np.array(node["g"] if "g" in node else weight_norm_g(jnp.asarray(v)), np.float32)
        bias = np.array(node["bias"], np.float32)
        if v.shape != w_shape or g.shape != _g_shape(w_shape) or bias.shape != b_shape:
            problems.append(f"{'/'.join(path)}: shapes {v.shape}, {g.shape}, {bias.shape} vs config {w_shape}")
            continue
        out[f"{name}.weight_g"], out[f"{name}.weight_v"], out[f"{name}.bias"] = g, v, bias
    if problems:
        raise ConversionError(f"generator params do not match the HiFi-GAN config: {'; '.join(problems)}")
    return out


def read_hifigan_generator(path: str | os.PathLike, trust_pickle: bool = False) -> dict[str, np.ndarray]:
    """The generator state_dict (key -> float32 numpy) of a published g_ file or a bare state_dict .pt.

    Read with torch.load(weights_only=True); a file that pickles other objects is refused unless
    `trust_pickle` (unpickling runs code from the file)."""
    import torch

    obj = read_torch_file(path, trust_pickle)
    sd = obj.get(GENERATOR_KEY) if isinstance(obj, Mapping) else None
    if hasattr(sd, "state_dict") and callable(sd.state_dict):
        sd = sd.state_dict()
    if sd is None and isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        sd = obj  # a bare state_dict
    if not isinstance(sd, Mapping):
        keys = list(obj) if isinstance(obj, Mapping) else type(obj).__name__
        hint = (
            " (this is a discriminator/optimizer do_ file: give the g_ file)"
            if isinstance(obj, Mapping) and all(k in obj for k in DISCRIMINATOR_KEYS)
            else ""
        )
        raise CheckpointFileError(f"{path}: no '{GENERATOR_KEY}' entry (got {keys}){hint}")
    out = {}
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().float().numpy() if v.is_floating_point() else v.detach().cpu().numpy()
        out[str(k)] = v
    return out


def write_hifigan_generator(path: str | os.PathLike, state_dict: Mapping[str, Any]) -> Path:
    """Write `{'generator': state_dict}` with torch.save, atomically (a published g_ file)."""
    import torch

    tensors = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in state_dict.items()}
    with atomic_output(path) as tmp, open(tmp, "wb") as f:  # a file object: torch rejects names starting with "."
        torch.save({GENERATOR_KEY: tensors}, f)
    return Path(path)
