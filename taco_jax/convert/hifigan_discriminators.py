"""HiFi-GAN's discriminators: PyTorch `mpd` / `msd` state_dicts <-> Flax variables, and the `do_` file.

The Flax modules (`taco_jax.vocoder.discriminators`) keep PyTorch's weight layout, so the mapping is a rename:
  `discriminators.{i}.convs.{j}.weight_v`   <-> params/discriminators_{i}/convs_{j}/v
  `....weight_g` -> `g`, `....bias` -> `bias` (weight-normed convs);
  `....weight_orig` -> params `weight_orig`, `....weight_u` / `....weight_v` -> batch_stats `u` / `v`
  (the spectral-normed first scale of the MSD; its `weight_v` is the power iteration's right vector).
On import the names of PyTorch's parametrize-based norms are accepted too (`parametrizations.weight.original0`
/ `original1` for weight norm; `parametrizations.weight.original`, `parametrizations.weight.0._u` / `._v` for
spectral norm; that form does its power step in the order u then v, so its first training step differs
slightly), and a plain `weight` (after remove_weight_norm) for a weight-normed conv (v = weight,
g = ||weight||). A `module.` prefix on every key (DistributedDataParallel) is stripped. Export writes the
published names. Every missing, unexpected or mis-shaped key is listed in one ConversionError.

A `do_XXXXXXXX` file of the published training holds {'mpd', 'msd', 'optim_g', 'optim_d', 'steps', 'epoch'};
`load_discriminator_checkpoint` reads it (torch.load with weights_only unless trusted) for fine-tuning, and
`discriminator_adamw_moments` turns its `optim_d` (AdamW over msd's then mpd's parameters) into moment trees.

State dicts here are plain mappings of str -> numpy array; torch is imported only to read a file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from taco_jax.convert.checkpoint_io import CheckpointFileError, read_torch_file
from taco_jax.convert.torch_ckpt import ConversionError

__all__ = [
    "DiscriminatorCheckpoint",
    "discriminator_adamw_moments",
    "discriminator_flax_to_torch",
    "discriminator_torch_to_flax",
    "load_discriminator_checkpoint",
]

KINDS = ("mpd", "msd")
# (collection, leaf) -> accepted PyTorch suffixes, the published one first.
_WN = {
    ("params", "v"): ("weight_v", "parametrizations.weight.original1"),
    ("params", "g"): ("weight_g", "parametrizations.weight.original0"),
    ("params", "bias"): ("bias",),
}
_SN = {
    ("params", "weight_orig"): ("weight_orig", "parametrizations.weight.original"),
    ("params", "bias"): ("bias",),
    ("batch_stats", "u"): ("weight_u", "parametrizations.weight.0._u"),
    ("batch_stats", "v"): ("weight_v", "parametrizations.weight.0._v"),
}
_INDEXED = re.compile(r"^(.*)_(\d+)$")


@dataclass(frozen=True)
class _Leaf:
    collection: str  # "params" | "batch_stats"
    path: tuple[str, ...]  # module path + leaf name
    shape: tuple[int, ...]
    torch_keys: tuple[str, ...]  # accepted names, the published one first


def _module(kind: str, channel_divisor: int) -> Any:
    from taco_jax.vocoder.discriminators import MultiPeriodDiscriminator, MultiScaleDiscriminator

    if kind not in KINDS:
        raise ValueError(f"unknown discriminator {kind!r}; expected one of {KINDS}")
    cls = MultiPeriodDiscriminator if kind == "mpd" else MultiScaleDiscriminator
    return cls(channel_divisor=channel_divisor)


def _layout(kind: str, channel_divisor: int = 1) -> list[_Leaf]:
    """Every variable of the Flax module with its shape (abstract init: nothing is computed) and torch names."""
    import jax
    import jax.numpy as jnp
    from flax.traverse_util import flatten_dict

    shapes = jax.eval_shape(_module(kind, channel_divisor).init, jax.random.PRNGKey(0), jnp.zeros((1, 64), jnp.float32))
    leaves = []
    for collection, tree in shapes.items():
        for path, value in flatten_dict(dict(tree)).items():
            spectral = "weight_orig" in _siblings(shapes, path)
            names = (_SN if spectral else _WN)[(collection, path[-1])]
            prefix = ".".join(_INDEXED.sub(r"\1.\2", part) for part in path[:-1])
            leaves.append(_Leaf(collection, path, tuple(value.shape), tuple(f"{prefix}.{n}" for n in names)))
    return leaves


def _siblings(shapes: Mapping[str, Any], path: tuple[str, ...]) -> set[str]:
    """The params leaf names of the module at path[:-1]."""
    node: Any = shapes.get("params", {})
    for part in path[:-1]:
        node = node.get(part, {}) if isinstance(node, Mapping) else {}
    return set(node) if isinstance(node, Mapping) else set()


def _strip_ddp(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    if state_dict and all(k.startswith("module.") for k in state_dict):
        return {k[len("module.") :]: v for k, v in state_dict.items()}
    return dict(state_dict)


def discriminator_torch_to_flax(
    state_dict: Mapping[str, Any], kind: str, *, channel_divisor: int = 1
) -> dict[str, dict]:
    """A PyTorch `mpd` or `msd` state_dict (key -> array) -> Flax variables of that discriminator.

    kind: "mpd" -> {"params"}; "msd" -> {"params", "batch_stats"}. Arrays become float32 numpy.
    channel_divisor: the discriminators' width divisor (1: published).
    Raises ConversionError listing every missing, unexpected and mis-shaped key.
    """
    from flax.traverse_util import unflatten_dict

    sd = _strip_ddp(state_dict)
    used: set[str] = set()
    missing, misshaped = [], []
    flat: dict[str, dict[tuple[str, ...], np.ndarray]] = {}
    for leaf in _layout(kind, channel_divisor):
        value = _take(sd, leaf, used)
        if value is None:
            missing.append(leaf.torch_keys[0])
            continue
        key, array = value
        if array.shape != leaf.shape:
            misshaped.append(f"{key}: {array.shape}, expected {leaf.shape}")
            continue
        flat.setdefault(leaf.collection, {})[leaf.path] = array
    unexpected = sorted(set(sd) - used)
    if missing or unexpected or misshaped:
        parts = [f"{name} ({len(keys)}): {', '.join(keys)}" for name, keys in
                 (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]  # fmt: skip
        raise ConversionError(f"HiFi-GAN {kind} state_dict does not match the published layout: " + "; ".join(parts))
    return {collection: unflatten_dict(tree) for collection, tree in flat.items()}


def _take(sd: Mapping[str, Any], leaf: _Leaf, used: set[str]) -> tuple[str, np.ndarray] | None:
    """The first accepted key present -> (key, float32 array); a weight-normed conv may give a plain weight."""
    for key in leaf.torch_keys:
        if key in sd:
            used.add(key)
            return key, np.asarray(sd[key], dtype=np.float32)
    if leaf.collection == "params" and leaf.path[-1] in ("v", "g"):
        plain = leaf.torch_keys[0].rsplit(".", 1)[0] + ".weight"
        if plain in sd:
            used.add(plain)
            weight = np.asarray(sd[plain], dtype=np.float32)
            if leaf.path[-1] == "v":
                return plain, weight
            norm = np.sqrt(
                np.sum(np.square(weight, dtype=np.float64), axis=tuple(range(1, weight.ndim)), keepdims=True)
            )
            return plain, norm.astype(np.float32)
    return None


def discriminator_flax_to_torch(
    variables: Mapping[str, Any], kind: str, *, channel_divisor: int = 1
) -> dict[str, np.ndarray]:
    """Flax variables of an `mpd` / `msd` -> a state_dict with the published key names (float32 numpy), which
    PyTorch's module loads with strict=True. Raises ConversionError listing missing / mis-shaped variables."""
    out: dict[str, np.ndarray] = {}
    problems = []
    for leaf in _layout(kind, channel_divisor):
        node: Any = variables.get(leaf.collection, {})
        for part in leaf.path:
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None:
            problems.append(f"{leaf.collection}/{'/'.join(leaf.path)} missing")
        elif tuple(np.shape(node)) != leaf.shape:
            problems.append(f"{leaf.collection}/{'/'.join(leaf.path)}: {tuple(np.shape(node))}, expected {leaf.shape}")
        else:
            out[leaf.torch_keys[0]] = np.asarray(node, dtype=np.float32)
    if problems:
        raise ConversionError(f"HiFi-GAN {kind} variables do not match the discriminator: " + "; ".join(problems))
    return out


@dataclass(frozen=True)
class DiscriminatorCheckpoint:
    """What a published `do_` file holds, converted: Flax variables and the raw torch entries it also had."""

    mpd: dict  # {"params"}
    msd: dict  # {"params", "batch_stats"}
    mpd_state_dict: dict  # the PyTorch state_dicts as numpy (for discriminator_adamw_moments)
    msd_state_dict: dict
    optim_d: Any  # the discriminators' AdamW state_dict (tensors as numpy), or None
    steps: int | None
    epoch: int | None


def load_discriminator_checkpoint(
    path: str | os.PathLike, *, trust_pickle: bool = False, channel_divisor: int = 1
) -> DiscriminatorCheckpoint:
    """Read a published `do_XXXXXXXX` file (torch.load weights_only unless `trust_pickle`).

    Needs its 'mpd' and 'msd' entries (CheckpointFileError naming the file otherwise); a mismatched state_dict
    is a ConversionError that names the file and lists the keys.
    """
    obj = read_torch_file(path, trust_pickle)
    if not isinstance(obj, Mapping) or any(not isinstance(obj.get(k), Mapping) for k in KINDS):
        keys = sorted(map(str, obj)) if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointFileError(f"{path}: not a HiFi-GAN discriminator file (needs 'mpd' and 'msd'; got {keys})")
    sds = {kind: _to_numpy(obj[kind]) for kind in KINDS}
    converted = {}
    for kind in KINDS:
        try:
            converted[kind] = discriminator_torch_to_flax(sds[kind], kind, channel_divisor=channel_divisor)
        except ConversionError as e:
            raise ConversionError(f"{path}: '{kind}': {e}") from None
    optim = obj.get("optim_d")
    return DiscriminatorCheckpoint(
        mpd=converted["mpd"], msd=converted["msd"], mpd_state_dict=sds["mpd"], msd_state_dict=sds["msd"],
        optim_d=_to_numpy(optim) if isinstance(optim, Mapping) else None,
        steps=_int_or_none(obj.get("steps")), epoch=_int_or_none(obj.get("epoch")),
    )  # fmt: skip


def _to_numpy(tree: Any) -> Any:
    """Tensors -> numpy (floats as float32) inside nested dicts / lists; other leaves unchanged."""
    if isinstance(tree, Mapping):
        return {k: _to_numpy(v) for k, v in tree.items()}
    if isinstance(tree, list | tuple):
        return type(tree)(_to_numpy(v) for v in tree)
    if hasattr(tree, "detach") and hasattr(tree, "numpy"):
        array = tree.detach().cpu()
        if array.is_floating_point():
            array = array.float()
        return array.numpy()
    return tree


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(np.asarray(value))
    except (TypeError, ValueError):
        return None


def _is_buffer(key: str, state_dict: Mapping[str, Any]) -> bool:
    """Spectral norm's u and v are buffers, not parameters (a spectral-normed conv's `weight_v` too)."""
    if key.endswith(("weight_u", "._u", "._v")):
        return True
    return key.endswith("weight_v") and f"{key[: -len('weight_v')]}weight_orig" in state_dict


def discriminator_adamw_moments(
    optim_d: Mapping[str, Any],
    mpd_state_dict: Mapping[str, Any],
    msd_state_dict: Mapping[str, Any],
    *,
    channel_divisor: int = 1,
) -> tuple[dict, dict, int]:
    """The published `optim_d` (AdamW over msd's then mpd's parameters) -> (mu, nu, step).

    mu and nu are {"mpd": params tree, "msd": params tree} shaped as the converted params; the optimizer's
    parameter indices follow the state_dicts' order without spectral norm's buffers. A parameter the optimizer
    never stepped gets zero moments.
    """
    try:
        ids = [i for group in optim_d["param_groups"] for i in group["params"]]
        states = optim_d["state"]
    except (KeyError, TypeError) as e:
        raise ConversionError(f"optim_d is not a torch.optim.AdamW state_dict (missing {e})") from None
    ordered = [("msd", k) for k in _strip_ddp(msd_state_dict) if not _is_buffer(k, msd_state_dict)]
    ordered += [("mpd", k) for k in _strip_ddp(mpd_state_dict) if not _is_buffer(k, mpd_state_dict)]
    if len(ids) != len(ordered):
        raise ConversionError(
            f"optim_d covers {len(ids)} parameters but msd and mpd have {len(ordered)}: not their optimizer"
        )
    sds = {"mpd": _strip_ddp(mpd_state_dict), "msd": _strip_ddp(msd_state_dict)}
    moments: dict[str, dict[str, dict]] = {name: {"mpd": {}, "msd": {}} for name in ("exp_avg", "exp_avg_sq")}
    steps = set()
    for index, (kind, key) in zip(ids, ordered, strict=True):
        state = states.get(index, {})
        shape = np.shape(sds[kind][key])
        for name, per_kind in moments.items():
            value = state.get(name)
            if value is not None and tuple(np.shape(value)) != tuple(shape):
                raise ConversionError(
                    f"optim_d {name} of parameter {index} has shape {tuple(np.shape(value))}, but {kind} {key} is "
                    f"{tuple(shape)}: the parameter order does not match"
                )
            per_kind[kind][key] = np.zeros(shape, np.float32) if value is None else np.asarray(value, np.float32)
        if "step" in state:
            steps.add(int(np.asarray(state["step"])))
    if len(steps) > 1:
        raise ConversionError(f"optim_d parameters were stepped different numbers of times: {sorted(steps)}")
    trees = []
    for name in ("exp_avg", "exp_avg_sq"):
        per_kind = {}
        for kind in KINDS:
            # Buffers ride along so that the conversion sees a complete state_dict; only params are kept.
            buffers = {k: v for k, v in sds[kind].items() if _is_buffer(k, sds[kind])}
            tree = discriminator_torch_to_flax(
                {**moments[name][kind], **buffers}, kind, channel_divisor=channel_divisor
            )
            per_kind[kind] = tree["params"]
        trees.append(per_kind)
    return trees[0], trees[1], steps.pop() if steps else 0
