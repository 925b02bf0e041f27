"""Masked Tacotron 2 losses as pure jnp functions (jit-able; string options are static Python values).

Conventions: channels-last mel `[B, T, C]`, gate logits `[B, T]`, alignments `[B, T_dec, N]` (decoder
steps x text tokens), int32 lengths `[B]`. Padded frames and tokens never contribute to a loss or to its
gradient: padded values are replaced with zeros *before* any arithmetic (not multiplied by a mask
afterwards), so even inf/NaN junk in padding cannot leak in.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

_MEL_KINDS = ("mse", "l1")
_GA_NORMALIZATIONS = ("per_frame", "per_cell")


def sequence_mask(lengths: jax.Array, max_len: int) -> jax.Array:
    """Bool `[B, max_len]`: True where position < lengths[b]."""
    return jnp.arange(max_len)[None, :] < jnp.asarray(lengths)[:, None]


def alignment_mask(text_len: jax.Array, dec_len: jax.Array, n_frames: int, n_tokens: int) -> jax.Array:
    """Bool `[B, n_frames, n_tokens]`: the valid cells of an alignment (step < dec_len[b], token < text_len[b])."""
    return sequence_mask(dec_len, n_frames)[:, :, None] & sequence_mask(text_len, n_tokens)[:, None, :]


def decoder_lengths(mel_len: jax.Array, r: int) -> jax.Array:
    """Decoder steps `ceil(mel_len / r)` `[B]` int32 when the decoder emits r frames per step."""
    mel_len = jnp.asarray(mel_len, dtype=jnp.int32)
    return (mel_len + (r - 1)) // r


def masked_mel_loss(pred: jax.Array, target: jax.Array, mel_len: jax.Array, kind: str = "mse") -> jax.Array:
    """Scalar mel loss: squared ("mse") or absolute ("l1") error summed over valid frames and channels.

    Divided by C x (total number of valid frames in the batch), i.e. the mean over valid elements.
    pred, target: `[B, T, C]`; mel_len: `[B]` frames.
    """
    if kind not in _MEL_KINDS:
        raise ValueError(f"unknown mel loss kind {kind!r}; expected one of {_MEL_KINDS}")
    mask = sequence_mask(mel_len, pred.shape[1])[:, :, None]  # [B, T, 1]
    diff = jnp.where(mask, pred - target, 0.0)
    err = jnp.square(diff) if kind == "mse" else jnp.abs(diff)
    n_valid = jnp.maximum(jnp.sum(mask), 1) * pred.shape[2]  # guards an all-empty batch against 0/0
    return jnp.sum(err) / n_valid


def masked_gate_loss(logits: jax.Array, target: jax.Array, mel_len: jax.Array, pos_weight: float = 1.0) -> jax.Array:
    """Scalar stop-token BCE-with-logits, mean over valid frames, with PyTorch's pos_weight semantics.

    loss = -[pw * y * log sigmoid(x) + (1 - y) * log(1 - sigmoid(x))], using log(1 - sigmoid(x)) =
    log_sigmoid(-x) for stability. logits, target: `[B, T]` (target in {0, 1}); mel_len: `[B]` frames.
    """
    mask = sequence_mask(mel_len, logits.shape[1])
    x = jnp.where(mask, logits, 0.0)
    y = jnp.where(mask, target, 0.0).astype(x.dtype)
    loss = -(pos_weight * y * jax.nn.log_sigmoid(x) + (1.0 - y) * jax.nn.log_sigmoid(-x))
    return jnp.sum(jnp.where(mask, loss, 0.0)) / jnp.maximum(jnp.sum(mask), 1)


def guided_attention_weights(
    text_len: jax.Array, dec_len: jax.Array, n_tokens: int, n_frames: int, sigma: float
) -> jax.Array:
    """Guided-attention penalty `[B, n_frames, n_tokens]` (Tachibana et al. 2017; ESPnet's layout).

    W[b, t, n] = 1 - exp(-(n / N_b - t / T_b)^2 / (2 sigma^2)) for n < N_b = text_len[b] and
    t < T_b = dec_len[b] (decoder steps); 0 outside that valid region.
    """
    text_len = jnp.asarray(text_len)
    dec_len = jnp.asarray(dec_len)
    n_b = jnp.maximum(text_len, 1).astype(jnp.float32)[:, None, None]  # max(., 1): no 0/0 for empty items
    t_b = jnp.maximum(dec_len, 1).astype(jnp.float32)[:, None, None]
    n = jnp.arange(n_tokens, dtype=jnp.float32)[None, None, :]
    t = jnp.arange(n_frames, dtype=jnp.float32)[None, :, None]
    w = 1.0 - jnp.exp(-jnp.square(n / n_b - t / t_b) / (2.0 * sigma**2))
    valid = alignment_mask(text_len, dec_len, n_frames, n_tokens)
    return jnp.where(valid, w, 0.0)


def guided_attention_loss(
    alignments: jax.Array,
    text_len: jax.Array,
    dec_len: jax.Array,
    sigma: float,
    normalization: str = "per_frame",
) -> jax.Array:
    """Scalar guided-attention loss for alignments `[B, T_dec, N]`; dec_len counts decoder steps.

    Sums W * A over valid cells of the whole batch, then divides by
      "per_cell":  the number of valid cells, sum_b N_b * T_b (ESPnet's masked mean);
      "per_frame": the number of valid decoder frames, sum_b T_b (summed over tokens, mean over frames),
                   which keeps the loss's scale independent of the text length.
    """
    if normalization not in _GA_NORMALIZATIONS:
        raise ValueError(f"unknown guided-attention normalization {normalization!r}; expected {_GA_NORMALIZATIONS}")
    _, n_frames, n_tokens = alignments.shape
    w = guided_attention_weights(text_len, dec_len, n_tokens, n_frames, sigma)
    valid = alignment_mask(text_len, dec_len, n_frames, n_tokens)
    total = jnp.sum(w * jnp.where(valid, alignments, 0.0))
    text_len = jnp.asarray(text_len, dtype=jnp.int32)
    dec_len = jnp.asarray(dec_len, dtype=jnp.int32)
    if normalization == "per_cell":
        count = jnp.sum(jnp.minimum(text_len, n_tokens) * jnp.minimum(dec_len, n_frames))
    else:
        count = jnp.sum(jnp.where(text_len > 0, jnp.minimum(dec_len, n_frames), 0))
    return total / jnp.maximum(count, 1).astype(total.dtype)


def mmi_ctc_loss(
    logits: jax.Array, dec_len: jax.Array, text: jax.Array, text_len: jax.Array, blank_id: int
) -> jax.Array:
    """CTC term of the MMI objective (Liu et al. 2019): the text must be recoverable from the decoder.

    logits [B, S, K] per decoder step (the MI estimator's; log-softmax is applied here), dec_len [B] valid
    steps, text [B, N] symbol ids (the CTC labels), text_len [B]. Returns the batch mean of each item's
    negative log-likelihood divided by its decoder steps. Items the CTC alignment cannot cover (fewer steps
    than labels plus repeated neighbours) contribute 0, as PyTorch's `zero_infinity=True`.
    """
    steps = logits.shape[1]
    logit_pad = (~sequence_mask(dec_len, steps)).astype(logits.dtype)
    label_mask = sequence_mask(text_len, text.shape[1])
    nll = optax.ctc_loss(logits, logit_pad, text, (~label_mask).astype(logits.dtype), blank_id=blank_id)
    repeats = jnp.sum(label_mask[:, 1:] & (text[:, 1:] == text[:, :-1]), axis=1)
    feasible = dec_len >= text_len + repeats
    per_item = jnp.where(feasible, nll, 0.0) / jnp.maximum(dec_len, 1).astype(logits.dtype)
    return jnp.mean(per_item)


def gradient_adaptive_factor(grads_main, grads_aux, max_factor: float) -> jax.Array:
    """GAF: the largest weight of an auxiliary loss whose gradient stays below the main loss's in every tensor.

    min over tensors with both gradients non-zero of max|g_main| / max|g_aux|, capped at max_factor
    (max_factor when no tensor qualifies).
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


def alignment_consistency_loss(
    fine: jax.Array,
    coarse: jax.Array,
    text_len: jax.Array,
    dec_len: jax.Array,
    r_fine: int,
    r_coarse: int,
) -> jax.Array:
    """DDC's consistency term: mean absolute difference between the fine and the coarse decoder's alignment.

    fine [B, S_f, N] (r_fine frames per step), coarse [B, S_c, N] (r_coarse frames per step, a multiple of
    r_fine); each fine step is compared with the coarse step that covers its first frame (Coqui's nearest
    upsampling). Like Coqui's `l1_loss(alignments, alignments_backwards)` it is a mean per alignment element,
    so its scale does not grow with the text length, but over valid elements only (text_len [B] tokens x
    dec_len [B] fine steps), so padding neither dilutes nor counts.
    """
    steps = fine.shape[1]
    cover = (jnp.arange(steps) * r_fine) // r_coarse
    upsampled = jnp.take(coarse, jnp.minimum(cover, coarse.shape[1] - 1), axis=1)
    valid = alignment_mask(text_len, dec_len, steps, fine.shape[2])
    total = jnp.sum(jnp.where(valid, jnp.abs(fine - upsampled), 0.0))
    return total / jnp.maximum(jnp.sum(valid), 1)
