"""Masked Tacotron 2 losses as pure jnp functions on plain arrays (jit-able; string options are static).

Conventions: channels-last mel `[B, T, C]`, gate logits `[B, T_dec]`, alignments `[B, T_dec, N]` (decoder
steps x text tokens), int32 lengths `[B]`. Padded frames and tokens never contribute to a loss or to its
gradient: padded values are replaced with zeros *before* any arithmetic (not multiplied by a mask
afterwards), so even inf/NaN junk in padding cannot leak in. Size arguments are keyword-only.

`reduction`: "mean" returns an f32 scalar; "sum" returns an f32 pair `(sum, count)` with sum / count equal
to the mean, so batches can be combined exactly (sum the sums, sum the counts). Items of length 0 add
nothing to either, which is how an evaluator leaves padding rows out: it zeroes their lengths.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

_MEL_KINDS = ("mse", "l1")
_GA_NORMALIZATIONS = ("per_frame", "per_cell")
_REDUCTIONS = ("mean", "sum")

Loss = jax.Array | tuple[jax.Array, jax.Array]  # a "mean" scalar or a "sum" (sum, count) pair


def sequence_mask(lengths: jax.Array, *, max_len: int) -> jax.Array:
    """Bool `[B, max_len]`: True where position < lengths[b]."""
    return jnp.arange(max_len)[None, :] < jnp.asarray(lengths)[:, None]


def alignment_mask(text_len: jax.Array, dec_len: jax.Array, *, n_frames: int, n_tokens: int) -> jax.Array:
    """Bool `[B, n_frames, n_tokens]`: the valid cells of an alignment (step < dec_len[b], token < text_len[b])."""
    frames = sequence_mask(dec_len, max_len=n_frames)
    return frames[:, :, None] & sequence_mask(text_len, max_len=n_tokens)[:, None, :]


def decoder_lengths(mel_len: jax.Array, *, r: int) -> jax.Array:
    """Decoder steps `ceil(mel_len / r)` `[B]` int32 when the decoder emits r frames per step."""
    mel_len = jnp.asarray(mel_len, dtype=jnp.int32)
    return (mel_len + (r - 1)) // r


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")


def _mean(total: jax.Array, count: jax.Array) -> jax.Array:
    """total / count, with count floored at 1 so an all-empty batch gives 0 rather than 0/0."""
    return total / jnp.maximum(count, 1).astype(total.dtype)


def _reduce(total: jax.Array, count: jax.Array, reduction: str) -> Loss:
    """Finishes a (total, count) pair: `_mean(total, count)` for "mean", f32 `(total, count)` for "sum"."""
    _check_reduction(reduction)
    if reduction == "sum":
        return total, count.astype(jnp.float32)
    return _mean(total, count)


def _mel_parts(pred: jax.Array, target: jax.Array, mel_len: jax.Array, kind: str) -> tuple[jax.Array, jax.Array]:
    """(error summed over valid elements, number of valid elements = valid frames x C)."""
    if kind not in _MEL_KINDS:
        raise ValueError(f"unknown mel loss kind {kind!r}; expected one of {_MEL_KINDS}")
    mask = sequence_mask(mel_len, max_len=pred.shape[1])[:, :, None]  # [B, T, 1]
    diff = jnp.where(mask, pred - target, 0.0)
    err = jnp.square(diff) if kind == "mse" else jnp.abs(diff)
    return jnp.sum(err), jnp.sum(mask) * pred.shape[2]


def masked_mel_loss(
    pred: jax.Array, target: jax.Array, mel_len: jax.Array, *, kind: str = "mse", reduction: str = "mean"
) -> Loss:
    """Mel loss: squared ("mse") or absolute ("l1") error, mean over valid frames and channels.

    pred, target: `[B, T, C]`; mel_len: `[B]` frames. "sum": (error sum, C x valid frames).
    """
    return _reduce(*_mel_parts(pred, target, mel_len, kind), reduction)


def _gate_parts(
    logits: jax.Array, target: jax.Array, dec_len: jax.Array, pos_weight: float
) -> tuple[jax.Array, jax.Array]:
    """(BCE summed over valid decoder steps, number of valid steps)."""
    mask = sequence_mask(dec_len, max_len=logits.shape[1])
    x = jnp.where(mask, logits, 0.0)
    y = jnp.where(mask, target, 0.0).astype(x.dtype)
    loss = -(pos_weight * y * jax.nn.log_sigmoid(x) + (1.0 - y) * jax.nn.log_sigmoid(-x))
    return jnp.sum(jnp.where(mask, loss, 0.0)), jnp.sum(mask)


def masked_gate_loss(
    logits: jax.Array, target: jax.Array, dec_len: jax.Array, *, pos_weight: float = 1.0, reduction: str = "mean"
) -> Loss:
    """Stop-token BCE-with-logits, mean over valid decoder steps, with PyTorch's pos_weight semantics.

    loss = -[pw * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))], using log(1 - sigmoid(x)) =
    log_sigmoid(-x) for stability. logits, target: `[B, T_dec]` per decoder step (target in {0, 1});
    dec_len: `[B]` decoder steps, not frames (`decoder_lengths(mel_len, r=r)`). "sum": (BCE sum, valid steps).
    """
    return _reduce(*_gate_parts(logits, target, dec_len, pos_weight), reduction)


def guided_attention_weights(
    text_len: jax.Array, dec_len: jax.Array, *, n_frames: int, n_tokens: int, sigma: float
) -> jax.Array:
    """Guided-attention penalty `[B, n_frames, n_tokens]` (Tachibana et al. 2017; ESPnet's layout).

    W[b, t, n] = 1 - exp(-(n / N_b - t / T_b)^2 / (2 sigma^2)) for n < N_b = text_len[b] and
    t < T_b = dec_len[b] (decoder steps); 0 outside that valid region. sigma is a fraction of the length.
    """
    text_len = jnp.asarray(text_len)
    dec_len = jnp.asarray(dec_len)
    n_b = jnp.maximum(text_len, 1).astype(jnp.float32)[:, None, None]  # max(., 1): no 0/0 for empty items
    t_b = jnp.maximum(dec_len, 1).astype(jnp.float32)[:, None, None]
    n = jnp.arange(n_tokens, dtype=jnp.float32)[None, None, :]
    t = jnp.arange(n_frames, dtype=jnp.float32)[None, :, None]
    w = 1.0 - jnp.exp(-jnp.square(n / n_b - t / t_b) / (2.0 * sigma**2))
    valid = alignment_mask(text_len, dec_len, n_frames=n_frames, n_tokens=n_tokens)
    return jnp.where(valid, w, 0.0)


def _ga_parts(
    alignments: jax.Array, text_len: jax.Array, dec_len: jax.Array, sigma: float, normalization: str
) -> tuple[jax.Array, jax.Array]:
    """(sum of W * A over valid cells, the normalization's count)."""
    if normalization not in _GA_NORMALIZATIONS:
        raise ValueError(f"unknown guided-attention normalization {normalization!r}; expected {_GA_NORMALIZATIONS}")
    _, n_frames, n_tokens = alignments.shape
    w = guided_attention_weights(text_len, dec_len, n_frames=n_frames, n_tokens=n_tokens, sigma=sigma)
    valid = alignment_mask(text_len, dec_len, n_frames=n_frames, n_tokens=n_tokens)
    total = jnp.sum(w * jnp.where(valid, alignments, 0.0))
    text_len = jnp.asarray(text_len, dtype=jnp.int32)
    dec_len = jnp.asarray(dec_len, dtype=jnp.int32)
    if normalization == "per_cell":
        count = jnp.sum(jnp.minimum(text_len, n_tokens) * jnp.minimum(dec_len, n_frames))
    else:
        count = jnp.sum(jnp.where(text_len > 0, jnp.minimum(dec_len, n_frames), 0))
    return total, count


def guided_attention_loss(
    alignments: jax.Array,
    text_len: jax.Array,
    dec_len: jax.Array,
    *,
    sigma: float,
    normalization: str = "per_frame",
    reduction: str = "mean",
) -> Loss:
    """Guided-attention loss for alignments `[B, T_dec, N]`; text_len `[B]` tokens, dec_len `[B]` decoder steps.

    Sums W * A over valid cells of the whole batch, then divides by
      "per_cell":  the number of valid cells, sum_b N_b * T_b (ESPnet's masked mean);
      "per_frame": the number of valid decoder frames of non-empty items, sum_b T_b (summed over tokens,
                   mean over frames), which keeps the loss's scale independent of the text length.
    "sum": (the weighted sum, that count).
    """
    return _reduce(*_ga_parts(alignments, text_len, dec_len, sigma, normalization), reduction)


def mmi_ctc_loss(
    logits: jax.Array,
    dec_len: jax.Array,
    text: jax.Array,
    text_len: jax.Array,
    *,
    blank_id: int,
    reduction: str = "mean",
) -> Loss:
    """CTC term of the MMI objective (Liu et al. 2019): the text must be recoverable from the decoder.

    logits [B, S, K] per decoder step (the MI estimator's; log-softmax is applied here), dec_len [B] valid
    steps, text [B, N] symbol ids (the CTC labels), text_len [B]. "mean": the batch mean of each item's
    negative log-likelihood divided by its decoder steps. Items the CTC alignment cannot cover (fewer steps
    than labels plus repeated neighbours) contribute 0, as PyTorch's `zero_infinity=True`. "sum": (sum of
    the per-item values over items with dec_len > 0 and text_len > 0, the number of such items).
    """
    _check_reduction(reduction)
    steps = logits.shape[1]
    logit_pad = (~sequence_mask(dec_len, max_len=steps)).astype(logits.dtype)
    label_mask = sequence_mask(text_len, max_len=text.shape[1])
    nll = optax.ctc_loss(logits, logit_pad, text, (~label_mask).astype(logits.dtype), blank_id=blank_id)
    repeats = jnp.sum(label_mask[:, 1:] & (text[:, 1:] == text[:, :-1]), axis=1)
    feasible = dec_len >= text_len + repeats
    per_item = jnp.where(feasible, nll, 0.0) / jnp.maximum(dec_len, 1).astype(logits.dtype)
    if reduction == "sum":
        present = (jnp.asarray(dec_len) > 0) & (jnp.asarray(text_len) > 0)
        return jnp.sum(jnp.where(present, per_item, 0.0)), jnp.sum(present).astype(jnp.float32)
    return jnp.mean(per_item)


def gradient_adaptive_factor(grads_main: Any, grads_aux: Any, max_factor: float) -> jax.Array:
    """GAF: the largest weight of an auxiliary loss whose gradient stays below the main loss's in every tensor.

    min over tensors with both gradients non-zero of max|g_main| / max|g_aux|, capped at max_factor
    (max_factor when no tensor qualifies). grads_main, grads_aux: pytrees of the same structure.
    """
    ratios = [
        jnp.where((a > 0) & (b > 0), a / jnp.where(b > 0, b, 1.0), jnp.inf)
        for a, b in zip(
            (jnp.max(jnp.abs(g)) for g in jax.tree.leaves(grads_main)),
            (jnp.max(jnp.abs(g)) for g in jax.tree.leaves(grads_aux)),
            strict=True,
        )
    ]
    return jnp.minimum(jnp.min(jnp.stack(ratios)), max_factor)


def _consistency_parts(
    fine: jax.Array, coarse: jax.Array, text_len: jax.Array, dec_len: jax.Array, r_fine: int, r_coarse: int
) -> tuple[jax.Array, jax.Array]:
    """(|fine - upsampled coarse| summed over valid elements, number of valid elements)."""
    steps = fine.shape[1]
    cover = (jnp.arange(steps) * r_fine) // r_coarse
    upsampled = jnp.take(coarse, jnp.minimum(cover, coarse.shape[1] - 1), axis=1)
    valid = alignment_mask(text_len, dec_len, n_frames=steps, n_tokens=fine.shape[2])
    return jnp.sum(jnp.where(valid, jnp.abs(fine - upsampled), 0.0)), jnp.sum(valid)


def alignment_consistency_loss(
    fine: jax.Array,
    coarse: jax.Array,
    text_len: jax.Array,
    dec_len: jax.Array,
    *,
    r_fine: int,
    r_coarse: int,
    reduction: str = "mean",
) -> Loss:
    """DDC's consistency term: mean absolute difference between the fine and the coarse decoder's alignment.

    fine [B, S_f, N] (r_fine frames per step), coarse [B, S_c, N] (r_coarse frames per step, a multiple of
    r_fine); each fine step is compared with the coarse step that covers its first frame (Coqui's nearest
    upsampling). Like Coqui's `l1_loss(alignments, alignments_backwards)` it is a mean per alignment element,
    so its scale does not grow with the text length, but over valid elements only (text_len [B] tokens x
    dec_len [B] fine steps), so padding neither dilutes nor counts. "sum": (difference sum, valid elements).
    """
    return _reduce(*_consistency_parts(fine, coarse, text_len, dec_len, r_fine, r_coarse), reduction)


# ------------------------------------------------------------------------------------------ full objective


class LossWeights(NamedTuple):
    """Weights of the Tacotron 2 objective's terms. guided_attention may be a traced scalar (a controller's)."""

    mel: float = 1.0  # on mel_loss + mel_post_loss
    gate: float = 1.0
    guided_attention: float | jax.Array = 0.0  # on ga_loss (+ ddc_ga_loss)
    tpse: float = 1.0
    ddc: float = 0.25  # on ddc_mel_loss + ddc_align_loss


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(jnp.shape(x))


def _expect(name: str, x: Any, expected: tuple[int, ...], meaning: str) -> None:
    if _shape(x) != expected:
        raise ValueError(f"tacotron2_loss: {name} has shape {_shape(x)}, expected {expected} ({meaning})")


def _check_targets(outputs: Any, mel: Any, mel_len: Any, gate: Any, text_len: Any, r: int) -> None:
    """Trace-time checks of the targets against the decoder's mel and gate outputs."""
    if len(_shape(mel)) != 3:
        raise ValueError(f"tacotron2_loss: mel must be [B, T, n_mels] (rank 3), got shape {_shape(mel)}")
    b, t, c = _shape(mel)
    pred, gate_shape = _shape(outputs.mel), _shape(gate)
    # NVIDIA's PyTorch code keeps mels as [B, n_mels, T]; catch it before the generic mismatch messages.
    transposed = (pred == (b, c, t) or gate_shape == (b, c)) and t != c
    if transposed:
        raise ValueError(
            f"tacotron2_loss: mel has shape {_shape(mel)}, which looks channels-first ([B, n_mels, T], "
            f"NVIDIA's PyTorch layout; outputs.mel is {pred}, gate is {gate_shape}); transpose it to "
            f"[B, T, n_mels], e.g. mel.transpose(0, 2, 1)"
        )
    _expect("outputs.mel", outputs.mel, (b, t, c), "the target mel's [B, T, n_mels]")
    _expect("outputs.mel_post", outputs.mel_post, (b, t, c), "the target mel's [B, T, n_mels]")
    _expect("gate", gate, (b, t), "[B, T] frame-level stop target, T = mel.shape[1]")
    _expect("mel_len", mel_len, (b,), "[B] frames")
    _expect("text_len", text_len, (b,), "[B] tokens")
    if t % r:
        raise ValueError(f"tacotron2_loss: mel frames T = {t} must be a multiple of r = {r} (pad the batch)")
    _expect("outputs.gate", outputs.gate, (b, -(-t // r)), "[B, ceil(T / r)] stop logits per decoder step")


def _check_alignments(outputs: Any, text: Any, r: int, r_coarse: int | None, ctc: bool) -> None:
    """Trace-time checks of the alignments, the optional outputs and their settings."""
    b, t, _ = _shape(outputs.mel)
    align = _shape(outputs.alignments)
    if len(align) != 3 or align[:2] != (b, -(-t // r)):
        raise ValueError(f"tacotron2_loss: outputs.alignments has shape {align}, expected [B, ceil(T / r), N]")
    n = align[2]
    if text is not None:
        _expect("text", text, (b, n), "[B, N], N = outputs.alignments.shape[2]")
    if getattr(outputs, "coarse_mel", None) is not None:
        if r_coarse is None:
            raise ValueError("tacotron2_loss: outputs has DDC coarse outputs; pass r_coarse (its reduction factor)")
        _expect("outputs.coarse_mel", outputs.coarse_mel, (b, t, _shape(outputs.mel)[2]), "like outputs.mel")
        coarse = (b, -(-t // r_coarse), n)
        _expect("outputs.coarse_alignments", outputs.coarse_alignments, coarse, "[B, ceil(T / r_coarse), N]")
    tpse = getattr(outputs, "tpse_style", None)
    if tpse is not None:
        _expect("outputs.gst_style", getattr(outputs, "gst_style", None), _shape(tpse), "like outputs.tpse_style")
    if ctc and getattr(outputs, "mi_logits", None) is not None:
        if text is None:
            raise ValueError("tacotron2_loss: the CTC term (ctc_blank given, outputs.mi_logits present) needs text")
        _expect("outputs.mi_logits", outputs.mi_logits, (b, align[1], _shape(outputs.mi_logits)[-1]), "[B, S, K]")


def _style_loss(predicted: jax.Array, reference: jax.Array, text_len: jax.Array, reduction: str) -> Loss:
    """TPS-GST's loss: mean |predicted - reference| over all elements; reference is detached.

    "sum": (sum over items with text_len > 0 of each item's mean |difference|, the number of such items).
    """
    diff = jnp.abs(predicted - jax.lax.stop_gradient(reference))
    if reduction == "mean":
        return jnp.mean(diff)
    present = jnp.asarray(text_len) > 0
    diff = diff.reshape(diff.shape[0], -1)
    # One flat sum then / E (not per-item means summed), so with every item present sum / count rounds
    # like jnp.mean's sum / (B E) (exactly so when E or B is a power of two).
    total = jnp.sum(jnp.where(present[:, None], diff, 0.0)) / diff.shape[1]
    return total, jnp.sum(present).astype(jnp.float32)


def _ddc_parts(
    outputs: Any, mel: jax.Array, mel_len: jax.Array, text_len: jax.Array, dec_len: jax.Array, r: int, opts: dict
) -> dict[str, tuple[jax.Array, jax.Array]]:
    """DDC (Coqui): the coarse decoder learns the mel itself and both alignments are pulled together;
    neither side is a detached target. Guided attention guides the coarse decoder as the fine one."""
    r_coarse = opts["r_coarse"]
    parts = {
        "ddc_mel_loss": _mel_parts(outputs.coarse_mel, mel, mel_len, opts["mel_loss"]),
        "ddc_align_loss": _consistency_parts(
            outputs.alignments, outputs.coarse_alignments, text_len, dec_len, r, r_coarse
        ),
    }
    if opts["guided_attention"]:
        coarse_len = decoder_lengths(mel_len, r=r_coarse)
        parts["ddc_ga_loss"] = _ga_parts(
            outputs.coarse_alignments, text_len, coarse_len, opts["ga_sigma"], opts["ga_normalization"]
        )
    return parts


def tacotron2_loss(
    outputs: Any,
    *,
    mel: jax.Array,
    mel_len: jax.Array,
    gate: jax.Array,
    text_len: jax.Array,
    r: int,
    weights: LossWeights = LossWeights(),  # noqa: B008 (an immutable NamedTuple)
    text: jax.Array | None = None,
    mel_loss: str = "mse",
    gate_pos_weight: float = 1.0,
    ga_sigma: float = 0.2,
    ga_normalization: str = "per_frame",
    guided_attention: bool = True,
    r_coarse: int | None = None,
    ctc_blank: int | None = None,
    reduction: str = "mean",
) -> tuple[jax.Array, dict[str, Loss]]:
    """The Tacotron 2 objective on plain arrays: `(total, terms)`.

    total = w.mel (mel + mel_post) + w.gate gate + w.guided_attention ga [+ w.tpse tpse]
            [+ w.ddc (ddc_mel + ddc_align) + w.guided_attention ddc_ga]
    outputs: has mel, mel_post [B, T, n_mels], gate [B, T/r] logits per decoder step, alignments [B, T/r, N],
    optionally tpse_style and gst_style [B, E], coarse_mel [B, T, n_mels] and coarse_alignments
    [B, ceil(T / r_coarse), N] (DDC, needs r_coarse), mi_logits [B, T/r, K] (CTC term when ctc_blank is set;
    needs text). Targets: mel [B, T, n_mels] channels-last, mel_len [B] frames, gate [B, T] frame-level stop
    target (the decoder's is gate[:, r-1::r]), text_len [B] tokens, text [B, N] ids.

    terms ("mean"): loss, mel_loss, mel_post_loss, gate_loss, ga_loss (0 when guided_attention is False),
    tpse_loss, ddc_mel_loss, ddc_align_loss, ddc_ga_loss, mmi_ctc_loss (not in total: the caller weights it),
    and ga_total, the sum of the unweighted terms w.guided_attention multiplies (total - w * ga_total is the
    rest). "sum": every loss term is a (sum, count) pair (no loss / ga_total entries); total is still the mean.
    """
    _check_reduction(reduction)
    _check_targets(outputs, mel, mel_len, gate, text_len, r)
    _check_alignments(outputs, text, r, r_coarse, ctc_blank is not None)
    dec_len = decoder_lengths(mel_len, r=r)
    # The gate speaks once per decoder step: its target is the frame target at the step's last frame.
    gate_target = gate[:, r - 1 :: r]
    zero = (jnp.zeros((), jnp.float32), jnp.zeros((), jnp.int32))
    parts = {
        "mel_loss": _mel_parts(outputs.mel, mel, mel_len, mel_loss),
        "mel_post_loss": _mel_parts(outputs.mel_post, mel, mel_len, mel_loss),
        "gate_loss": _gate_parts(outputs.gate, gate_target, dec_len, gate_pos_weight),
        "ga_loss": _ga_parts(outputs.alignments, text_len, dec_len, ga_sigma, ga_normalization)
        if guided_attention
        else zero,
    }
    means = {k: _mean(*v) for k, v in parts.items()}
    pairs = {k: (v[0], v[1].astype(jnp.float32)) for k, v in parts.items()}
    w = weights
    total = w.mel * (means["mel_loss"] + means["mel_post_loss"]) + w.gate * means["gate_loss"]
    total = total + w.guided_attention * means["ga_loss"]
    ga_total = means["ga_loss"]
    if getattr(outputs, "tpse_style", None) is not None:
        # TPS-GST learns to predict the reference's style from the text; its input is the detached encoder
        # output and its target the detached GST style, so it never pulls on the rest of the model.
        means["tpse_loss"] = _style_loss(outputs.tpse_style, outputs.gst_style, text_len, "mean")
        total = total + w.tpse * means["tpse_loss"]
        if reduction == "sum":
            pairs["tpse_loss"] = _style_loss(outputs.tpse_style, outputs.gst_style, text_len, "sum")
    if getattr(outputs, "coarse_mel", None) is not None:
        opts = dict(r_coarse=r_coarse, mel_loss=mel_loss, guided_attention=guided_attention, ga_sigma=ga_sigma)
        ddc = _ddc_parts(outputs, mel, mel_len, text_len, dec_len, r, opts | {"ga_normalization": ga_normalization})
        means |= {k: _mean(*v) for k, v in ddc.items()}
        pairs |= {k: (v[0], v[1].astype(jnp.float32)) for k, v in ddc.items()}
        total = total + w.ddc * (means["ddc_mel_loss"] + means["ddc_align_loss"])
        if guided_attention:
            total = total + w.guided_attention * means["ddc_ga_loss"]
            ga_total = ga_total + means["ddc_ga_loss"]
    if getattr(outputs, "mi_logits", None) is not None and ctc_blank is not None:
        ctc = mmi_ctc_loss(outputs.mi_logits, dec_len, text, text_len, blank_id=ctc_blank, reduction=reduction)
        (pairs if reduction == "sum" else means)["mmi_ctc_loss"] = ctc
    if reduction == "sum":
        return total, pairs
    return total, {"loss": total, **means, "ga_total": ga_total}
