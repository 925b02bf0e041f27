"""NVIDIA/tacotron2 and DeepLearningExamples (DLE) PyTorch state_dicts <-> taco_jax variables (pure numpy).

Layouts:
  * "nvidia": NVIDIA/tacotron2 keys (`embedding.weight`, `encoder.convolutions.0.0.conv.weight`, ...);
  * "dle":    the same keys with DistributedDataParallel's `module.` prefix (DeepLearningExamples checkpoints).

Tensor mapping (PyTorch -> Flax):
  * Linear weight [out, in]        -> Dense kernel [in, out] (transpose);
  * Conv1d weight [out, in, k]     -> conv kernel [k, in, out] (channels-last, no flip);
  * BatchNorm1d weight/bias        -> params scale/bias; running_mean/var -> batch_stats mean/var;
    `num_batches_tracked` is optional and ignored (written as 0 on export);
  * LSTM(Cell) weight_ih [4H, in], weight_hh [4H, H] -> w_ih [in, 4H], w_hh [H, 4H] (gate order i, f, g, o in both);
    bias = bias_ih + bias_hh (on export: the sum in bias_ih, zeros in bias_hh);
  * Embedding weight [V, D]        -> embedding [V, D].

State dicts here are plain mappings of str -> numpy array; this module never imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

LAYOUTS: dict[str, str] = {"nvidia": "", "dle": "module."}  # layout -> key prefix

# Keys of the NVIDIA architecture, used to recognise a layout (after the prefix is stripped).
_NVIDIA_KEY_PATTERNS = [
    re.compile(p)
    for p in (
        r"embedding\.weight",
        r"encoder\.convolutions\.\d+\.0\.conv\.(weight|bias)",
        r"(encoder|postnet)\.convolutions\.\d+\.1\.(weight|bias|running_mean|running_var|num_batches_tracked)",
        r"postnet\.convolutions\.\d+\.0\.conv\.(weight|bias)",
        r"encoder\.lstm\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0(_reverse)?",
        r"decoder\.prenet\.layers\.\d+\.linear_layer\.weight",
        r"decoder\.(attention_rnn|decoder_rnn)\.(weight_ih|weight_hh|bias_ih|bias_hh)",
        r"decoder\.attention_layer\.(query_layer|memory_layer|v)\.linear_layer\.weight",
        r"decoder\.attention_layer\.location_layer\.location_conv\.conv\.weight",
        r"decoder\.attention_layer\.location_layer\.location_dense\.linear_layer\.weight",
        r"decoder\.(linear_projection|gate_layer)\.linear_layer\.(weight|bias)",
    )
]

# Keys the dims are read from (NVIDIA names, no prefix); config inference needs all of them.
ANCHOR_KEYS = (
    "embedding.weight",
    "encoder.convolutions.0.0.conv.weight",
    "decoder.prenet.layers.0.linear_layer.weight",
    "decoder.attention_rnn.weight_hh",
    "decoder.attention_layer.query_layer.linear_layer.weight",
    "decoder.attention_layer.location_layer.location_conv.conv.weight",
    "decoder.decoder_rnn.weight_hh",
    "postnet.convolutions.0.0.conv.weight",
)


class ConversionError(ValueError):
    """A state_dict does not match the expected layout; the message lists every offending key."""


@dataclass(frozen=True)
class _Rule:
    """One taco_jax variable and the PyTorch key(s) it comes from.

    kind: "copy" | "dense" (transpose) | "conv" (transpose(2, 1, 0)) | "lstm_bias" (torch_keys = ih, hh).
    torch_shape: the expected shape of every key in torch_keys.
    """

    torch_keys: tuple[str, ...]
    torch_shape: tuple[int, ...]
    collection: str  # "params" | "batch_stats"
    path: tuple[str, ...]
    kind: str


# ----------------------------------------------------------------------------------------------- layout


def _strip(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    return {k[len(prefix) :]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _matches(key: str) -> bool:
    return any(p.fullmatch(key) for p in _NVIDIA_KEY_PATTERNS)


def detect_layout(state_dict: Mapping[str, Any]) -> str:
    """Return "nvidia" or "dle" for a state_dict (key -> array).

    The layout whose prefix makes the most keys NVIDIA Tacotron 2 keys wins; fewer than half of the keys
    matching means an unknown layout (ConversionError listing the keys that match no known name).
    """
    if not state_dict:
        raise ConversionError("empty state_dict: no keys to detect a layout from")
    best, best_count = None, -1
    for layout, prefix in LAYOUTS.items():
        count = sum(1 for k in state_dict if k.startswith(prefix) and _matches(k[len(prefix) :]))
        if count > best_count:
            best, best_count = layout, count
    if best_count * 2 < len(state_dict):
        unmatched = sorted(k for k in state_dict if not any(_matches(k.removeprefix(p)) for p in LAYOUTS.values()))
        raise ConversionError(
            f"unknown state_dict layout: {len(unmatched)} of {len(state_dict)} keys match no NVIDIA/DLE Tacotron 2 "
            f"key (known layouts: {', '.join(LAYOUTS)}); unmatched keys: {', '.join(unmatched) or '(none)'}"
        )
    return best


def _check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise ConversionError(f"unknown layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
    return LAYOUTS[layout]


# ----------------------------------------------------------------------------------------------- config


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    idx = {int(m.group(1)) for k in keys if (m := rx.fullmatch(k))}
    n = len(idx)
    if idx != set(range(n)):
        raise ConversionError(f"layer indices {sorted(idx)} of '{pattern}' are not contiguous from 0")
    return n


def infer_n_mels(state_dict: Mapping[str, Any], layout: str) -> int:
    """Number of mel channels: the input width of the first postnet conv."""
    sd = _strip(state_dict, _check_layout(layout))
    key = "postnet.convolutions.0.0.conv.weight"
    if key not in sd:
        raise ConversionError(f"cannot infer n_mels: key '{LAYOUTS[layout]}{key}' is missing")
    return int(np.shape(sd[key])[1])


def config_from_state_dict(state_dict: Mapping[str, Any], layout: str) -> dict[str, int]:
    """ModelConfig field overrides (dims, layer counts, kernel sizes, r, n_symbols) read from tensor shapes.

    Raises ConversionError naming the anchor keys that are missing or have the wrong rank.
    """
    prefix = _check_layout(layout)
    sd = _strip(state_dict, prefix)
    ranks = {k: len(np.shape(sd[k])) for k in ANCHOR_KEYS if k in sd}
    want = {k: 3 if k.endswith(".conv.weight") else 2 for k in ANCHOR_KEYS}
    bad = [f"{prefix}{k} (missing)" for k in ANCHOR_KEYS if k not in sd]
    bad += [f"{prefix}{k} (rank {ranks[k]}, expected {want[k]})" for k in ranks if ranks[k] != want[k]]
    if bad:
        raise ConversionError(f"cannot infer the model config; bad anchor keys: {', '.join(bad)}")
    shape = lambda k: tuple(int(d) for d in np.shape(sd[k]))  # noqa: E731
    n_symbols, emb = shape("embedding.weight")
    enc, _, enc_k = shape("encoder.convolutions.0.0.conv.weight")
    prenet, frame = shape("decoder.prenet.layers.0.linear_layer.weight")
    att_rnn = shape("decoder.attention_rnn.weight_hh")[1]
    att_dim = shape("decoder.attention_layer.query_layer.linear_layer.weight")[0]
    loc_f, _, loc_k = shape("decoder.attention_layer.location_layer.location_conv.conv.weight")
    dec_rnn = shape("decoder.decoder_rnn.weight_hh")[1]
    post, n_mels, post_k = shape("postnet.convolutions.0.0.conv.weight")
    if frame % n_mels:
        raise ConversionError(
            f"{prefix}decoder.prenet.layers.0.linear_layer.weight input width {frame} is not a multiple of "
            f"n_mels={n_mels} (from {prefix}postnet.convolutions.0.0.conv.weight)"
        )
    return {
        "n_symbols": n_symbols,
        "symbols_embedding_dim": emb,
        "encoder_embedding_dim": enc,
        "encoder_n_convolutions": _count(sd, r"encoder\.convolutions\.(\d+)\.0\.conv\.weight"),
        "encoder_kernel_size": enc_k,
        "n_frames_per_step": frame // n_mels,
        "prenet_dim": prenet,
        "attention_rnn_dim": att_rnn,
        "attention_dim": att_dim,
        "attention_location_n_filters": loc_f,
        "attention_location_kernel_size": loc_k,
        "decoder_rnn_dim": dec_rnn,
        "postnet_embedding_dim": post,
        "postnet_kernel_size": post_k,
        "postnet_n_convolutions": _count(sd, r"postnet\.convolutions\.(\d+)\.0\.conv\.weight"),
    }


def _config_from_params(params: Mapping[str, Any]) -> tuple[dict[str, int], int]:
    """(ModelConfig overrides, n_mels) read from a taco_jax params tree."""
    try:
        enc = params["encoder"]
        dec = params["decoder"]
        post = params["postnet"]
        n_symbols, emb = np.shape(params["embedding"]["embedding"])
        enc_k, _, enc_dim = np.shape(enc["convolutions"]["conv_0"]["conv"]["kernel"])
        frame, prenet = np.shape(dec["prenet_0"]["kernel"])
        post_k, n_mels, post_dim = np.shape(post["conv_0"]["conv"]["kernel"])
        loc_k, _, loc_f = np.shape(dec["location_conv"]["kernel"])
        cfg = {
            "n_symbols": n_symbols,
            "symbols_embedding_dim": emb,
            "encoder_embedding_dim": enc_dim,
            "encoder_n_convolutions": sum(1 for k in enc["convolutions"] if k.startswith("conv_")),
            "encoder_kernel_size": enc_k,
            "n_frames_per_step": frame // n_mels,
            "prenet_dim": prenet,
            "attention_rnn_dim": np.shape(dec["attention_rnn"]["w_hh"])[0],
            "attention_dim": np.shape(dec["query_layer"]["kernel"])[1],
            "attention_location_n_filters": loc_f,
            "attention_location_kernel_size": loc_k,
            "decoder_rnn_dim": np.shape(dec["decoder_rnn"]["w_hh"])[0],
            "postnet_embedding_dim": post_dim,
            "postnet_kernel_size": post_k,
            "postnet_n_convolutions": sum(1 for k in post if k.startswith("conv_")),
        }
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(f"params tree is not a taco_jax Tacotron 2 (missing or malformed {e})") from None
    return {k: int(v) for k, v in cfg.items()}, int(n_mels)


# ----------------------------------------------------------------------------------------------- rules


def _rules(c: Mapping[str, int], n_mels: int) -> list[_Rule]:
    """Every variable of the NVIDIA architecture with config `c`, in NVIDIA's registration order."""
    rules: list[_Rule] = []

    def add(keys, shape, path, kind="copy", collection="params"):
        rules.append(_Rule(tuple(keys), tuple(int(d) for d in shape), collection, tuple(path), kind))

    def conv_bn(torch_base, flax_base, i, c_in, c_out, k):
        add([f"{torch_base}.{i}.0.conv.weight"], (c_out, c_in, k), (*flax_base, f"conv_{i}", "conv", "kernel"), "conv")
        add([f"{torch_base}.{i}.0.conv.bias"], (c_out,), (*flax_base, f"conv_{i}", "conv", "bias"))
        add([f"{torch_base}.{i}.1.weight"], (c_out,), (*flax_base, f"bn_{i}", "scale"))
        add([f"{torch_base}.{i}.1.bias"], (c_out,), (*flax_base, f"bn_{i}", "bias"))
        add([f"{torch_base}.{i}.1.running_mean"], (c_out,), (*flax_base, f"bn_{i}", "mean"), collection="batch_stats")
        add([f"{torch_base}.{i}.1.running_var"], (c_out,), (*flax_base, f"bn_{i}", "var"), collection="batch_stats")

    def lstm(torch_base, suffix, flax_base, n_in, h):
        add([f"{torch_base}.weight_ih{suffix}"], (4 * h, n_in), (*flax_base, "w_ih"), "dense")
        add([f"{torch_base}.weight_hh{suffix}"], (4 * h, h), (*flax_base, "w_hh"), "dense")
        add([f"{torch_base}.bias_ih{suffix}", f"{torch_base}.bias_hh{suffix}"], (4 * h,), (*flax_base, "bias"),
            "lstm_bias")  # fmt: skip

    emb, enc = c["symbols_embedding_dim"], c["encoder_embedding_dim"]
    add(["embedding.weight"], (c["n_symbols"], emb), ("embedding", "embedding"))
    for i in range(c["encoder_n_convolutions"]):
        conv_bn("encoder.convolutions", ("encoder", "convolutions"), i, emb if i == 0 else enc, enc,
                c["encoder_kernel_size"])  # fmt: skip
    lstm("encoder.lstm", "_l0", ("encoder", "lstm_fwd"), enc, enc // 2)
    lstm("encoder.lstm", "_l0_reverse", ("encoder", "lstm_bwd"), enc, enc // 2)

    frame, pre = n_mels * c["n_frames_per_step"], c["prenet_dim"]
    att_rnn, att, dec_rnn = c["attention_rnn_dim"], c["attention_dim"], c["decoder_rnn_dim"]
    add(["decoder.prenet.layers.0.linear_layer.weight"], (pre, frame), ("decoder", "prenet_0", "kernel"), "dense")
    add(["decoder.prenet.layers.1.linear_layer.weight"], (pre, pre), ("decoder", "prenet_1", "kernel"), "dense")
    lstm("decoder.attention_rnn", "", ("decoder", "attention_rnn"), pre + enc, att_rnn)
    a = "decoder.attention_layer."
    add([a + "query_layer.linear_layer.weight"], (att, att_rnn), ("decoder", "query_layer", "kernel"), "dense")
    add([a + "memory_layer.linear_layer.weight"], (att, enc), ("decoder", "memory_layer", "kernel"), "dense")
    add([a + "v.linear_layer.weight"], (1, att), ("decoder", "v", "kernel"), "dense")
    loc_f, loc_k = c["attention_location_n_filters"], c["attention_location_kernel_size"]
    add([a + "location_layer.location_conv.conv.weight"], (loc_f, 2, loc_k), ("decoder", "location_conv", "kernel"),
        "conv")  # fmt: skip
    add([a + "location_layer.location_dense.linear_layer.weight"], (att, loc_f),
        ("decoder", "location_dense", "kernel"), "dense")  # fmt: skip
    lstm("decoder.decoder_rnn", "", ("decoder", "decoder_rnn"), att_rnn + enc, dec_rnn)
    add(["decoder.linear_projection.linear_layer.weight"], (frame, dec_rnn + enc),
        ("decoder", "linear_projection", "kernel"), "dense")  # fmt: skip
    add(["decoder.linear_projection.linear_layer.bias"], (frame,), ("decoder", "linear_projection", "bias"))
    add(["decoder.gate_layer.linear_layer.weight"], (1, dec_rnn + enc), ("decoder", "gate_layer", "kernel"), "dense")
    add(["decoder.gate_layer.linear_layer.bias"], (1,), ("decoder", "gate_layer", "bias"))

    n_post, post = c["postnet_n_convolutions"], c["postnet_embedding_dim"]
    for i in range(n_post):
        c_in = n_mels if i == 0 else post
        c_out = n_mels if i == n_post - 1 else post
        conv_bn("postnet.convolutions", ("postnet",), i, c_in, c_out, c["postnet_kernel_size"])
    return rules


def _optional_keys(c: Mapping[str, int]) -> list[str]:
    """BatchNorm `num_batches_tracked` buffers: accepted, not needed."""
    keys = [f"encoder.convolutions.{i}.1.num_batches_tracked" for i in range(c["encoder_n_convolutions"])]
    return keys + [f"postnet.convolutions.{i}.1.num_batches_tracked" for i in range(c["postnet_n_convolutions"])]


def _set(tree: dict, path: tuple[str, ...], value: np.ndarray) -> None:
    for p in path[:-1]:
        tree = tree.setdefault(p, {})
    tree[path[-1]] = value


def _get(tree: Mapping, path: tuple[str, ...]) -> Any:
    for p in path:
        tree = tree[p]
    return tree


# ----------------------------------------------------------------------------------------------- convert


def torch_to_flax(
    state_dict: Mapping[str, Any], layout: str = "auto", allow_missing: bool = False
) -> tuple[dict, dict, dict[str, Any]]:
    """Convert an NVIDIA/DLE state_dict (key -> numpy-convertible array) to taco_jax (params, batch_stats, report).

    Arrays come out float32 in taco_jax layouts (Dense kernels [in, out], conv kernels [K, in, out],
    LSTM w_ih [in, 4H], w_hh [H, 4H], bias [4H]). The model dims are inferred with `config_from_state_dict`.

    report: layout, config (ModelConfig overrides), n_mels, converted / missing / unexpected / ignored keys,
    shape_mismatch ("key: expected (..), got (..)"). Missing or unexpected keys raise ConversionError
    listing them unless allow_missing (missing variables are then absent from the trees); shape mismatches
    always raise.
    """
    if layout == "auto":
        layout = detect_layout(state_dict)
    prefix = _check_layout(layout)
    cfg = config_from_state_dict(state_dict, layout)
    n_mels = infer_n_mels(state_dict, layout)
    rules = _rules(cfg, n_mels)
    optional = {prefix + k for k in _optional_keys(cfg)}
    expected = {prefix + k for r in rules for k in r.torch_keys}

    params: dict = {}
    batch_stats: dict = {}
    converted, missing, mismatch = [], [], []
    for rule in rules:
        keys = [prefix + k for k in rule.torch_keys]
        absent = [k for k in keys if k not in state_dict]
        if absent:
            missing += absent
            continue
        arrays = [np.asarray(state_dict[k]) for k in keys]
        bad = [(k, a.shape) for k, a in zip(keys, arrays, strict=True) if tuple(a.shape) != rule.torch_shape]
        if bad:
            mismatch += [f"{k}: expected {rule.torch_shape}, got {tuple(s)}" for k, s in bad]
            continue
        arrays = [a.astype(np.float32) for a in arrays]
        if rule.kind == "dense":
            value = arrays[0].T
        elif rule.kind == "conv":
            value = arrays[0].transpose(2, 1, 0)
        elif rule.kind == "lstm_bias":
            value = arrays[0] + arrays[1]
        else:
            value = arrays[0]
        _set(params if rule.collection == "params" else batch_stats, rule.path, np.ascontiguousarray(value))
        converted += keys
    unexpected = sorted(k for k in state_dict if k not in expected and k not in optional)
    report = {
        "layout": layout,
        "config": cfg,
        "n_mels": n_mels,
        "converted": converted,
        "missing": missing,
        "unexpected": unexpected,
        "ignored": sorted(k for k in state_dict if k in optional),
        "shape_mismatch": mismatch,
    }
    problems = []
    if mismatch:
        problems.append(f"shape mismatches: {'; '.join(mismatch)}")
    if (missing or unexpected) and not allow_missing:
        if missing:
            problems.append(f"missing keys: {', '.join(missing)}")
        if unexpected:
            problems.append(f"unexpected (unmapped) keys: {', '.join(unexpected)}")
    if problems:
        hint = "" if mismatch or allow_missing else " (allow_missing=True / --allow-missing converts the rest)"
        raise ConversionError(f"cannot convert the {layout} state_dict{hint}: " + " | ".join(problems))
    return params, batch_stats, report


def flax_to_torch(params: Mapping[str, Any], batch_stats: Mapping[str, Any], layout: str = "nvidia") -> dict:
    """Export taco_jax variables to an NVIDIA ("nvidia") or DLE ("dle", `module.` prefix) state_dict.

    Returns key -> float32 numpy array in PyTorch layouts (Linear [out, in], Conv1d [out, in, K], LSTM
    weight_ih [4H, in]); LSTM bias_ih holds taco_jax's summed bias and bias_hh zeros; BatchNorm
    num_batches_tracked is an int64 scalar 0. Loadable with `load_state_dict(strict=True)` by the
    NVIDIA architecture with the same dims.
    """
    prefix = _check_layout(layout)
    cfg, n_mels = _config_from_params(params)
    out: dict[str, np.ndarray] = {}
    missing = []
    for rule in _rules(cfg, n_mels):
        tree = params if rule.collection == "params" else batch_stats
        try:
            value = np.asarray(_get(tree, rule.path), np.float32)
        except (KeyError, TypeError):
            missing.append(f"{rule.collection}/{'/'.join(rule.path)}")
            continue
        if rule.kind == "dense":
            value = value.T
        elif rule.kind == "conv":
            value = value.transpose(2, 1, 0)
        if rule.kind == "lstm_bias":
            values = [value, np.zeros_like(value)]
        else:
            values = [value]
        for key, v in zip(rule.torch_keys, values, strict=True):
            if tuple(v.shape) != rule.torch_shape:
                missing.append(f"{rule.collection}/{'/'.join(rule.path)}: shape {v.shape} for {key} {rule.torch_shape}")
            out[prefix + key] = np.array(v, order="C", copy=True)  # writable (torch.from_numpy needs it)
        if rule.torch_keys[0].endswith(".1.running_var"):
            out[prefix + rule.torch_keys[0].replace("running_var", "num_batches_tracked")] = np.array(0, np.int64)
    if missing:
        raise ConversionError(f"cannot export: missing or malformed variables: {', '.join(missing)}")
    return out
