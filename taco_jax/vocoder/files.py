"""Vocoder files: the taco_jax vocoder directory, and loading any generator a user brings.

A vocoder directory (`save_vocoder`) holds `config.json` (the published HiFi-GAN format) and
`generator.msgpack` (flax.serialization of the plain generator params; weight norm folded). `load_vocoder`
reads such a directory, a vocoder training run directory (its `generator/` subdirectory, which the trainer
keeps as a vocoder directory), or a published PyTorch generator file (`g_XXXXXXXX` or a .pt) with the
config.json next to it or given explicitly.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import flax.serialization
import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.errors import UserError
from taco_jax.files import write_bytes_atomic, write_text_atomic
from taco_jax.vocoder.config import HifiganConfig, load_hifigan_config
from taco_jax.vocoder.generator import Generator
from taco_jax.vocoder.layers import fold_weight_norm

__all__ = ["CONFIG_FILE", "GENERATOR_FILE", "RUN_GENERATOR_DIR", "VocoderFileError", "load_vocoder", "save_vocoder"]

CONFIG_FILE = "config.json"
GENERATOR_FILE = "generator.msgpack"
RUN_GENERATOR_DIR = "generator"  # a vocoder training run keeps its latest generator here


class VocoderFileError(UserError, ValueError):
    """A vocoder file or directory that cannot be loaded; the message names the path and what is wrong."""


def save_vocoder(out_dir: str | os.PathLike, config: HifiganConfig, params: Mapping[str, Any]) -> Path:
    """Write `config.json` and `generator.msgpack` (plain weights; weight-normed params are folded) into
    `out_dir`, each file atomically. Returns the directory."""
    out = Path(out_dir)
    plain = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), fold_weight_norm(params))
    _check_params(plain, config, str(out / GENERATOR_FILE))
    write_bytes_atomic(out / GENERATOR_FILE, flax.serialization.msgpack_serialize(plain))
    write_text_atomic(out / CONFIG_FILE, json.dumps(config.to_json(), indent=2) + "\n")
    return out


def load_vocoder(
    path: str | os.PathLike, *, config_path: str | os.PathLike | None = None, trust_pickle: bool = False
) -> tuple[HifiganConfig, dict[str, Any]]:
    """(config, plain generator params) from a vocoder directory, a vocoder training run directory or a
    PyTorch generator file.

    config_path: the HiFi-GAN config.json to use (default: the directory's, or the one next to the file).
    trust_pickle: allow full unpickling of a PyTorch file that needs it (runs code from the file).
    """
    p = Path(path)
    if p.is_dir():
        vocoder_dir = p if (p / GENERATOR_FILE).exists() else p / RUN_GENERATOR_DIR
        if not (vocoder_dir / GENERATOR_FILE).exists():
            raise VocoderFileError(
                f"{p}: not a vocoder directory (no {GENERATOR_FILE}) nor a vocoder training run "
                f"(no {RUN_GENERATOR_DIR}/{GENERATOR_FILE})"
            )
        config = _config(vocoder_dir / GENERATOR_FILE, config_path)
        return config, _read_msgpack(vocoder_dir / GENERATOR_FILE, config)
    if not p.exists():
        raise VocoderFileError(f"{p}: no such vocoder file or directory")
    config = _config(p, config_path)
    if p.suffix == ".msgpack":
        return config, _read_msgpack(p, config)
    from taco_jax.convert.hifigan import hifigan_torch_to_flax, read_hifigan_generator

    state_dict = read_hifigan_generator(p, trust_pickle)
    return config, hifigan_torch_to_flax(state_dict, config, weight_norm=False, source=str(p))


def _config(generator_path: Path, config_path: str | os.PathLike | None) -> HifiganConfig:
    """The explicit config, else the config.json next to the generator file, else an error saying so."""
    if config_path is not None:
        return load_hifigan_config(config_path)
    beside = generator_path.parent / CONFIG_FILE
    if not beside.exists():
        raise VocoderFileError(
            f"{generator_path}: no {CONFIG_FILE} next to it: give the HiFi-GAN config.json the generator was "
            "trained with (--vocoder-config, or config_path=)"
        )
    return load_hifigan_config(beside)


def _read_msgpack(path: Path, config: HifiganConfig) -> dict[str, Any]:
    """Generator params from a save_vocoder msgpack file, checked against `config`."""
    data = path.read_bytes()
    try:
        tree = flax.serialization.msgpack_restore(data)
    except Exception as e:  # noqa: BLE001  # msgpack's errors on a truncated or foreign file vary
        raise VocoderFileError(f"{path}: not a flax msgpack file ({type(e).__name__}: {e})") from None
    if not isinstance(tree, Mapping):
        raise VocoderFileError(f"{path}: expected a tree of arrays, got {type(tree).__name__}")
    _check_params(tree, config, str(path))
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float32), dict(tree))


def _check_params(tree: Mapping[str, Any], config: HifiganConfig, source: str) -> None:
    """Error listing every missing, unexpected and mis-shaped entry of plain params `tree` for `config`."""
    mel = jax.ShapeDtypeStruct((1, 2, config.num_mels), jnp.float32)
    want = _flat(jax.eval_shape(Generator(config).init, jax.random.PRNGKey(0), mel)["params"])
    have = _flat(tree)
    missing = sorted(set(want) - set(have))
    unexpected = sorted(set(have) - set(want))
    shapes = [
        f"{k}: expected {tuple(want[k].shape)}, got {np.shape(have[k])}"
        for k in sorted(set(want) & set(have))
        if tuple(want[k].shape) != np.shape(have[k])
    ]
    labelled = (("missing", missing), ("unexpected", unexpected), ("mis-shaped", shapes))
    parts = [f"{label}: {', '.join(keys)}" for label, keys in labelled if keys]
    if parts:
        raise VocoderFileError(f"{source}: generator params do not match its config: {'; '.join(parts)}")


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}/"))
        else:
            out[f"{prefix}{k}"] = v
    return out
