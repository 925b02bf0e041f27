"""NVIDIA/tacotron2, DeepLearningExamples (DLE) and Tacotron2-New (T2N) PyTorch state_dicts <-> taco_jax
variables (pure numpy).

Layouts:
  * "nvidia":     NVIDIA/tacotron2 keys (`embedding.weight`, `encoder.convolutions.0.0.conv.weight`, ...);
  * "dle":        the same keys with DistributedDataParallel's `module.` prefix (DeepLearningExamples checkpoints);
  * "t2n":        T2N HEAD: NVIDIA's keys plus its options, each recognised by its keys: the MMI head
                  (`decoder.linear_projection.0.*`, `decoder.mel_layer.*`) with the MI estimator `mi.layers.*`
                  (CTC blank first), GST (`gst.*`) added through `gst_proj.*`, TPS-GST `tps_gst.*`;
  * "t2n-legacy": the first T2N commit / creotiv's RussianTTS-Tacotron2: GST concatenated to the memory (no
                  `gst_proj`, memory E + token-embedding wide), TPS-GST `tpse_gst.*`, MI estimator
                  `mi.proj.0.*` + `mi.ctc_proj.*` (CTC blank last).
T2N's second decoder (`decoder_secondary.*`) is taco_jax's DDC coarse decoder (`decoder_coarse`, model.ddc).

Tensor mapping (PyTorch -> Flax):
  * Linear weight [out, in]        -> Dense kernel [in, out] (transpose);
  * Conv1d weight [out, in, k]     -> conv kernel [k, in, out] (channels-last, no flip);
  * BatchNorm1d weight/bias        -> params scale/bias; running_mean/var -> batch_stats mean/var;
    `num_batches_tracked` is optional and ignored (written as 0 on export);
  * LSTM(Cell) weight_ih [4H, in], weight_hh [4H, H] -> w_ih [in, 4H], w_hh [H, 4H] (gate order i, f, g, o in both);
    bias = bias_ih + bias_hh (on export: the sum in bias_ih, zeros in bias_hh);
  * Embedding weight [V, D]        -> embedding [V, D];
  * Conv2d weight [out, in, kh, kw] -> conv kernel [kh, kw, in, out] (GST reference encoder);
  * GRU weight_ih [3H, in], weight_hh [3H, H] -> w_ih [in, 3H], w_hh [H, 3H] (gate order r, z, n in both);
    bias_ih and bias_hh stay separate (the n block of bias_hh is inside the reset gate's product).

State dicts here are plain mappings of str -> numpy array; this module never imports torch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from taco_jax.errors import UserError

LAYOUTS: dict[str, str] = {"nvidia": "", "dle": "module.", "t2n": "", "t2n-legacy": ""}  # layout -> key prefix
T2N_LAYOUTS = ("t2n", "t2n-legacy")

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
        # Tacotron2-New
        r"decoder\.linear_projection\.0\.linear_layer\.(weight|bias)",
        r"decoder\.mel_layer\.[03]\.linear_layer\.(weight|bias)",
        r"mi\.(layers\.[03]|proj\.0|ctc_proj)\.linear_layer\.(weight|bias)",
        r"gst\.encoder\.(convs|bns)\.\d+\.(weight|bias|running_mean|running_var|num_batches_tracked)",
        r"gst\.encoder\.gru\.(weight_ih|weight_hh|bias_ih|bias_hh)_l0",
        r"gst\.stl\.(embed|attention\.W_(query|key|value)\.weight)",
        r"gst_proj\.linear_layer\.(weight|bias)",
        r"(tps_gst|tpse_gst)\.(inp\.[01]|gru|linear)\.\w+",
        r"decoder_secondary\.\S+",
    )
]
# Keys only T2N HEAD / only legacy T2N checkpoints have.
_T2N_HEAD_MARKERS = re.compile(r"(gst_proj|tps_gst|decoder_secondary|mi\.layers)\..*")
_T2N_LEGACY_MARKERS = re.compile(r"(tpse_gst|mi\.proj|mi\.ctc_proj)\..*")

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


class ConversionError(UserError, ValueError):
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
    """Return "nvidia", "dle", "t2n" or "t2n-legacy" for a state_dict (key -> array).

    The prefix that makes the most keys Tacotron 2 keys wins ("dle" for `module.`); fewer than half of the
    keys matching means an unknown layout (ConversionError listing the keys that match no known name).
    Unprefixed state_dicts are T2N HEAD or legacy T2N by their marker keys (HEAD: `gst_proj`, `tps_gst`,
    `decoder_secondary`, `mi.layers`; legacy: `tpse_gst`, `mi.proj`, `mi.ctc_proj`, or GST without
    `gst_proj`, i.e. concatenated), NVIDIA otherwise.
    """
    if not state_dict:
        raise ConversionError("empty state_dict: no keys to detect a layout from")
    best, best_count = None, -1
    for layout, prefix in (("nvidia", ""), ("dle", "module.")):
        count = sum(1 for k in state_dict if k.startswith(prefix) and _matches(k[len(prefix) :]))
        if count > best_count:
            best, best_count = layout, count
    if best_count * 2 < len(state_dict):
        unmatched = sorted(k for k in state_dict if not any(_matches(k.removeprefix(p)) for p in LAYOUTS.values()))
        raise ConversionError(
            f"unknown state_dict layout: {len(unmatched)} of {len(state_dict)} keys match no NVIDIA/DLE Tacotron 2 "
            f"key (known layouts: {', '.join(LAYOUTS)}); unmatched keys: {', '.join(unmatched) or '(none)'}"
        )
    if best == "dle":
        return best
    head = any(_T2N_HEAD_MARKERS.fullmatch(k) for k in state_dict)
    legacy = any(_T2N_LEGACY_MARKERS.fullmatch(k) for k in state_dict) or (
        "gst.stl.embed" in state_dict and "gst_proj.linear_layer.weight" not in state_dict
    )
    if head and legacy:
        keys = sorted(k for k in state_dict if _T2N_HEAD_MARKERS.fullmatch(k) or _T2N_LEGACY_MARKERS.fullmatch(k))
        raise ConversionError(f"state_dict mixes T2N HEAD and legacy T2N keys: {', '.join(keys)}")
    return "t2n" if head else "t2n-legacy" if legacy else best


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


def config_from_state_dict(state_dict: Mapping[str, Any], layout: str) -> dict[str, Any]:
    """ModelConfig field overrides (dims, layer counts, kernel sizes, r, n_symbols, T2N options) read from
    tensor shapes and key names.

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
        **_t2n_options(sd, layout, prefix, enc),
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


# T2N's training recipe (upstream-model.md 1.9): dropout rates the converted config continues with.
_T2N_HEAD_DROPOUT = {
    "encoder_dropout": 0.005, "prenet_dropout": 0.01, "prenet_dropout_at_inference": False,
    "attention_dropout": 0.01, "decoder_dropout": 0.01, "postnet_dropout": 0.01,
}  # fmt: skip


def _t2n_options(sd: Mapping[str, Any], layout: str, prefix: str, enc: int) -> dict[str, Any]:
    """The Tacotron2-New ModelConfig fields of an (unprefixed) state_dict; {} for NVIDIA/DLE."""
    if layout not in T2N_LAYOUTS:
        return {}
    shape = lambda k: tuple(int(d) for d in np.shape(sd[k]))  # noqa: E731
    legacy = layout == "t2n-legacy"
    out: dict[str, Any] = {} if legacy else dict(_T2N_HEAD_DROPOUT)
    out["mmi"] = "decoder.mel_layer.0.linear_layer.weight" in sd
    coarse_prenet = "decoder_secondary.prenet.layers.0.linear_layer.weight"
    if coarse_prenet in sd:
        n_mels = shape("postnet.convolutions.0.0.conv.weight")[1]
        out |= {"ddc": True, "ddc_reduction_factor": shape(coarse_prenet)[1] // n_mels}
    if out["mmi"]:
        out["mmi_dim"] = shape("decoder.mel_layer.0.linear_layer.weight")[0]
        out["mmi_blank"] = "last" if legacy else "first"
        mi_out = "mi.ctc_proj.linear_layer.weight" if legacy else "mi.layers.3.linear_layer.weight"
        if mi_out in sd:
            out["mmi_vocab"] = shape(mi_out)[0]
    if "gst.stl.embed" not in sd:
        return out
    n_convs = _count(sd, r"gst\.encoder\.convs\.(\d+)\.weight")
    token_num, d_k = shape("gst.stl.embed")
    e = shape("gst.stl.attention.W_key.weight")[0]
    out |= {
        "gst": "concat" if legacy else "add",
        "gst_token_num": token_num,
        "gst_token_embedding_size": e,
        "gst_num_heads": e // d_k,
        "gst_ref_filters": [shape(f"gst.encoder.convs.{i}.weight")[0] for i in range(n_convs)],
        "gst_ref_gru_size": shape("gst.encoder.gru.weight_hh_l0")[1],
        # T2N's reference encoder reads its [n_mels, T] buffer as a [T, n_mels] image; its filters depend on it.
        "gst_reference_layout": "torch_view",
    }
    memory = shape("decoder.attention_layer.memory_layer.linear_layer.weight")[1]
    if memory != (enc + e if legacy else enc):
        raise ConversionError(
            f"{prefix}decoder.attention_layer.memory_layer.linear_layer.weight reads memory {memory} wide; "
            f"the {layout} layout with encoder {enc} and style {e} expects {enc + e if legacy else enc}"
        )
    tpse = f"{'tpse_gst' if legacy else 'tps_gst'}.gru.weight_hh_l0"
    if tpse in sd:
        out |= {"tpse": True, "tpse_gru_size": shape(tpse)[1], "tpse_max_norm": 0.0 if legacy else 5.0}
    return out


def _t2n_options_from_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The Tacotron2-New ModelConfig fields of a taco_jax params tree (KeyError if malformed)."""
    dec = params["decoder"]
    out: dict[str, Any] = {"mmi": "mel_layer_0" in dec}
    if "decoder_coarse" in params:
        frame = np.shape(params["decoder_coarse"]["prenet_0"]["kernel"])[0]
        out |= {
            "ddc": True,
            "ddc_reduction_factor": frame // np.shape(params["postnet"]["conv_0"]["conv"]["kernel"])[1],
        }
    if out["mmi"]:
        out["mmi_dim"] = np.shape(dec["mel_layer_0"]["kernel"])[0]
        out["mmi_vocab"] = np.shape(params["mi"]["output"]["dense"]["kernel"])[1]
    if "gst" not in params:
        return out
    g = params["gst"]
    token_num, d_k = np.shape(g["stl"]["embed"])
    e = np.shape(g["stl"]["w_key"])[1]
    out |= {
        "gst": "add" if "gst_proj" in params else "concat",
        "gst_token_num": token_num,
        "gst_token_embedding_size": e,
        "gst_num_heads": e // d_k,
        "gst_ref_filters": [
            int(np.shape(g["encoder"][f"conv_{i}"]["kernel"])[-1])
            for i in range(sum(1 for k in g["encoder"] if k.startswith("conv_")))
        ],
        "gst_ref_gru_size": np.shape(g["encoder"]["gru"]["w_hh"])[0],
    }
    if "tpse" in params:
        out |= {"tpse": True, "tpse_gru_size": np.shape(params["tpse"]["gru_fwd"]["w_hh"])[0]}
    return out


def _config_from_params(params: Mapping[str, Any]) -> tuple[dict[str, Any], int]:
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
        cfg = {k: int(v) for k, v in cfg.items()} | _t2n_options_from_params(params)
    except (KeyError, TypeError, ValueError) as e:
        raise ConversionError(f"params tree is not a taco_jax Tacotron 2 (missing or malformed {e})") from None
    return {k: int(v) if isinstance(v, np.integer) else v for k, v in cfg.items()}, int(n_mels)


# ----------------------------------------------------------------------------------------------- rules


def _rules(c: Mapping[str, Any], n_mels: int, layout: str = "nvidia") -> list[_Rule]:
    """Every variable of the architecture with config `c` (NVIDIA's, plus the T2N options it names), in
    PyTorch's registration order. `layout` picks the key names of the T2N generation."""
    rules: list[_Rule] = []
    legacy = layout == "t2n-legacy"

    def add(keys, shape, path, kind="copy", collection="params"):
        rules.append(_Rule(tuple(keys), tuple(int(d) for d in shape), collection, tuple(path), kind))

    def bn(torch_base, path, n):
        add([f"{torch_base}.weight"], (n,), (*path, "scale"))
        add([f"{torch_base}.bias"], (n,), (*path, "bias"))
        add([f"{torch_base}.running_mean"], (n,), (*path, "mean"), collection="batch_stats")
        add([f"{torch_base}.running_var"], (n,), (*path, "var"), collection="batch_stats")

    def conv_bn(torch_base, flax_base, i, c_in, c_out, k):
        add([f"{torch_base}.{i}.0.conv.weight"], (c_out, c_in, k), (*flax_base, f"conv_{i}", "conv", "kernel"), "conv")
        add([f"{torch_base}.{i}.0.conv.bias"], (c_out,), (*flax_base, f"conv_{i}", "conv", "bias"))
        bn(f"{torch_base}.{i}.1", (*flax_base, f"bn_{i}"), c_out)

    def lstm(torch_base, suffix, flax_base, n_in, h):
        add([f"{torch_base}.weight_ih{suffix}"], (4 * h, n_in), (*flax_base, "w_ih"), "dense")
        add([f"{torch_base}.weight_hh{suffix}"], (4 * h, h), (*flax_base, "w_hh"), "dense")
        add([f"{torch_base}.bias_ih{suffix}", f"{torch_base}.bias_hh{suffix}"], (4 * h,), (*flax_base, "bias"),
            "lstm_bias")  # fmt: skip

    def linear(torch_base, path, n_in, n_out, bias=True):
        add([f"{torch_base}.weight"], (n_out, n_in), (*path, "kernel"), "dense")
        if bias:
            add([f"{torch_base}.bias"], (n_out,), (*path, "bias"))

    def gru(torch_base, suffix, path, n_in, h):
        add([f"{torch_base}.weight_ih{suffix}"], (3 * h, n_in), (*path, "w_ih"), "dense")
        add([f"{torch_base}.weight_hh{suffix}"], (3 * h, h), (*path, "w_hh"), "dense")
        add([f"{torch_base}.bias_ih{suffix}"], (3 * h,), (*path, "b_ih"))
        add([f"{torch_base}.bias_hh{suffix}"], (3 * h,), (*path, "b_hh"))

    emb, enc = c["symbols_embedding_dim"], c["encoder_embedding_dim"]
    gst, e = c.get("gst", "none"), c.get("gst_token_embedding_size", 0)
    m = enc + e if gst == "concat" else enc  # the decoder's memory width
    add(["embedding.weight"], (c["n_symbols"], emb), ("embedding", "embedding"))
    for i in range(c["encoder_n_convolutions"]):
        conv_bn("encoder.convolutions", ("encoder", "convolutions"), i, emb if i == 0 else enc, enc,
                c["encoder_kernel_size"])  # fmt: skip
    lstm("encoder.lstm", "_l0", ("encoder", "lstm_fwd"), enc, enc // 2)
    lstm("encoder.lstm", "_l0_reverse", ("encoder", "lstm_bwd"), enc, enc // 2)

    def decoder(t: str, f: str, r: int):  # torch module name, flax module name, frames per step
        frame, pre = n_mels * r, c["prenet_dim"]
        att_rnn, att, dec_rnn = c["attention_rnn_dim"], c["attention_dim"], c["decoder_rnn_dim"]
        linear(f"{t}.prenet.layers.0.linear_layer", (f, "prenet_0"), frame, pre, bias=False)
        linear(f"{t}.prenet.layers.1.linear_layer", (f, "prenet_1"), pre, pre, bias=False)
        lstm(f"{t}.attention_rnn", "", (f, "attention_rnn"), pre + m, att_rnn)
        a = f"{t}.attention_layer."
        linear(a + "query_layer.linear_layer", (f, "query_layer"), att_rnn, att, bias=False)
        linear(a + "memory_layer.linear_layer", (f, "memory_layer"), m, att, bias=False)
        linear(a + "v.linear_layer", (f, "v"), att, 1, bias=False)
        loc_f, loc_k = c["attention_location_n_filters"], c["attention_location_kernel_size"]
        add([a + "location_layer.location_conv.conv.weight"], (loc_f, 2, loc_k), (f, "location_conv", "kernel"), "conv")
        linear(a + "location_layer.location_dense.linear_layer", (f, "location_dense"), loc_f, att, bias=False)
        lstm(f"{t}.decoder_rnn", "", (f, "decoder_rnn"), att_rnn + m, dec_rnn)
        if c.get("mmi"):
            mmi = c["mmi_dim"]
            linear(f"{t}.linear_projection.0.linear_layer", (f, "linear_projection"), dec_rnn + m, mmi)
            linear(f"{t}.mel_layer.0.linear_layer", (f, "mel_layer_0"), mmi, mmi)
            linear(f"{t}.mel_layer.3.linear_layer", (f, "mel_layer_1"), mmi, frame)
            linear(f"{t}.gate_layer.linear_layer", (f, "gate_layer"), mmi, 1)
        else:
            linear(f"{t}.linear_projection.linear_layer", (f, "linear_projection"), dec_rnn + m, frame)
            linear(f"{t}.gate_layer.linear_layer", (f, "gate_layer"), dec_rnn + m, 1)

    decoder("decoder", "decoder", c["n_frames_per_step"])

    n_post, post = c["postnet_n_convolutions"], c["postnet_embedding_dim"]
    for i in range(n_post):
        c_in = n_mels if i == 0 else post
        c_out = n_mels if i == n_post - 1 else post
        conv_bn("postnet.convolutions", ("postnet",), i, c_in, c_out, c["postnet_kernel_size"])

    if c.get("mmi"):
        mmi, vocab = c["mmi_dim"], c["mmi_vocab"]
        hidden, output = ("mi.proj.0", "mi.ctc_proj") if legacy else ("mi.layers.0", "mi.layers.3")
        linear(f"{hidden}.linear_layer", ("mi", "hidden", "dense"), mmi, mmi)
        linear(f"{output}.linear_layer", ("mi", "output", "dense"), mmi, vocab)
    if gst != "none":
        filters, ref_gru = c["gst_ref_filters"], c["gst_ref_gru_size"]
        for i, (c_in, c_out) in enumerate(zip([1, *filters[:-1]], filters, strict=True)):
            add([f"gst.encoder.convs.{i}.weight"], (c_out, c_in, 3, 3), ("gst", "encoder", f"conv_{i}", "kernel"),
                "conv2d")  # fmt: skip
            add([f"gst.encoder.convs.{i}.bias"], (c_out,), ("gst", "encoder", f"conv_{i}", "bias"))
        for i, c_out in enumerate(filters):
            bn(f"gst.encoder.bns.{i}", ("gst", "encoder", f"bn_{i}"), c_out)
        freq = n_mels
        for _ in filters:
            freq = (freq - 1) // 2 + 1  # 3x3, stride 2, padding 1
        gru("gst.encoder.gru", "_l0", ("gst", "encoder", "gru"), filters[-1] * freq, ref_gru)
        d_k = e // c["gst_num_heads"]
        add(["gst.stl.embed"], (c["gst_token_num"], d_k), ("gst", "stl", "embed"))
        add(["gst.stl.attention.W_query.weight"], (e, ref_gru), ("gst", "stl", "w_query"), "dense")
        add(["gst.stl.attention.W_key.weight"], (e, d_k), ("gst", "stl", "w_key"), "dense")
        add(["gst.stl.attention.W_value.weight"], (e, d_k), ("gst", "stl", "w_value"), "dense")
        if gst == "add":
            linear("gst_proj.linear_layer", ("gst_proj", "dense"), e, enc)
    if c.get("tpse"):
        t, g = ("tpse_gst" if legacy else "tps_gst"), c["tpse_gru_size"]
        add([f"{t}.inp.0.weight"], (2 * g, enc, 3), ("tpse", "conv", "kernel"), "conv")
        bn(f"{t}.inp.1", ("tpse", "bn"), 2 * g)
        gru(f"{t}.gru", "_l0", ("tpse", "gru_fwd"), 2 * g, g)
        gru(f"{t}.gru", "_l0_reverse", ("tpse", "gru_bwd"), 2 * g, g)
        linear(f"{t}.linear", ("tpse", "linear"), 2 * g, e)
    if c.get("ddc"):  # T2N's second decoder: taco_jax's DDC coarse decoder
        decoder("decoder_secondary", "decoder_coarse", c["ddc_reduction_factor"])
    return rules


def _optional_keys(rules: list[_Rule]) -> list[str]:
    """BatchNorm `num_batches_tracked` buffers: accepted, not needed."""
    return [r.torch_keys[0].replace("running_var", "num_batches_tracked") for r in rules if r.path[-1] == "var"]


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
    rules = _rules(cfg, n_mels, layout)
    optional = {prefix + k for k in _optional_keys(rules)}
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
        elif rule.kind == "conv2d":
            value = arrays[0].transpose(2, 3, 1, 0)
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


def _check_export_layout(cfg: Mapping[str, Any], layout: str) -> None:
    """The options a taco_jax model has must exist in the PyTorch architecture it is exported to."""
    need = {"add": "t2n", "concat": "t2n-legacy"}.get(cfg.get("gst", "none"))
    if need and layout != need:
        raise ConversionError(f"a model with model.gst={cfg['gst']!r} exports to layout {need!r}, not {layout!r}")
    extras = [k for k in ("mmi", "tpse", "ddc") if cfg.get(k)]
    if extras and layout not in T2N_LAYOUTS:
        raise ConversionError(
            f"a model with {', '.join('model.' + k for k in extras)} exports to a T2N layout "
            f"({', '.join(T2N_LAYOUTS)}), not {layout!r}"
        )


def flax_to_torch(params: Mapping[str, Any], batch_stats: Mapping[str, Any], layout: str = "nvidia") -> dict:
    """Export taco_jax variables to an NVIDIA ("nvidia"), DLE ("dle", `module.` prefix) or T2N ("t2n",
    "t2n-legacy"; the layout must have the model's options) state_dict.

    Returns key -> float32 numpy array in PyTorch layouts (Linear [out, in], Conv1d [out, in, K], LSTM
    weight_ih [4H, in]); LSTM bias_ih holds taco_jax's summed bias and bias_hh zeros; BatchNorm
    num_batches_tracked is an int64 scalar 0. Loadable with `load_state_dict(strict=True)` by the
    NVIDIA architecture with the same dims.
    """
    prefix = _check_layout(layout)
    cfg, n_mels = _config_from_params(params)
    _check_export_layout(cfg, layout)
    out: dict[str, np.ndarray] = {}
    missing = []
    for rule in _rules(cfg, n_mels, layout):
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
        elif rule.kind == "conv2d":
            value = value.transpose(3, 2, 0, 1)
        if rule.kind == "lstm_bias":
            values = [value, np.zeros_like(value)]
        else:
            values = [value]
        for key, v in zip(rule.torch_keys, values, strict=True):
            if tuple(v.shape) != rule.torch_shape:
                missing.append(f"{rule.collection}/{'/'.join(rule.path)}: shape {v.shape} for {key} {rule.torch_shape}")
            out[prefix + key] = np.array(v, order="C", copy=True)  # writable (torch.from_numpy needs it)
        if rule.path[-1] == "var":
            out[prefix + rule.torch_keys[0].replace("running_var", "num_batches_tracked")] = np.array(0, np.int64)
    if missing:
        raise ConversionError(f"cannot export: missing or malformed variables: {', '.join(missing)}")
    return out


# ----------------------------------------------------------------------------------------------- Adam state

_BUFFER_SUFFIXES = (".running_mean", ".running_var", ".num_batches_tracked")


def torch_adam_moments(
    optimizer: Mapping[str, Any], state_dict: Mapping[str, Any], layout: str = "auto"
) -> tuple[dict, dict, int]:
    """PyTorch Adam(W) state -> (mu, nu, step): taco_jax params trees of the first and second moments.

    `optimizer` is `torch.optim.Adam(...).state_dict()` with tensors as numpy arrays: {'state': {index:
    {'step', 'exp_avg', 'exp_avg_sq'}}, 'param_groups': [{'params': [index, ...]}, ...]}; indices follow
    `model.parameters()`, i.e. the state_dict's order without its BatchNorm buffers. The moments go through
    the same key mapping as the weights. A fused LSTM bias takes bias_ih's moments: PyTorch's bias_ih and
    bias_hh receive the same gradient, so each of their moments is the summed bias's. A parameter the
    optimizer never stepped gets zero moments.
    """
    if layout == "auto":
        layout = detect_layout(state_dict)
    try:
        ids = [i for group in optimizer["param_groups"] for i in group["params"]]
        states = optimizer["state"]
    except (KeyError, TypeError) as e:
        raise ConversionError(f"optimizer state is not a torch.optim.Adam state_dict (missing {e})") from None
    param_keys = [k for k in state_dict if not k.endswith(_BUFFER_SUFFIXES)]
    if len(ids) != len(param_keys):
        raise ConversionError(
            f"optimizer state covers {len(ids)} parameters but the state_dict has {len(param_keys)}: "
            "not the optimizer of this model"
        )
    moments: dict[str, dict[str, Any]] = {"exp_avg": {}, "exp_avg_sq": {}}
    steps = set()
    for index, key in zip(ids, param_keys, strict=True):
        s = states.get(index, {})
        for name, tree in moments.items():
            value = s.get(name)
            if value is not None and tuple(np.shape(value)) != tuple(np.shape(state_dict[key])):
                raise ConversionError(
                    f"optimizer {name} of parameter {index} has shape {tuple(np.shape(value))}, but {key} is "
                    f"{tuple(np.shape(state_dict[key]))}: the parameter order does not match"
                )
            zero_hh = key.split(".")[-1].startswith("bias_hh")  # the fused bias keeps bias_ih's moments
            tree[key] = np.zeros(np.shape(state_dict[key]), np.float32) if value is None or zero_hh else value
        if "step" in s:
            steps.add(int(np.asarray(s["step"])))
    if len(steps) > 1:
        raise ConversionError(f"optimizer parameters were stepped different numbers of times: {sorted(steps)}")
    buffers = {k: v for k, v in state_dict.items() if k.endswith(_BUFFER_SUFFIXES)}
    mu, _, _ = torch_to_flax({**moments["exp_avg"], **buffers}, layout)
    nu, _, _ = torch_to_flax({**moments["exp_avg_sq"], **buffers}, layout)
    return mu, nu, steps.pop() if steps else 0
