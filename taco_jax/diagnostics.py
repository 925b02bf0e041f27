"""Alignment and stop-gate diagnostics: pure, jit-able, masked jnp functions.

Conventions as in taco_jax.losses: alignments `[B, T_dec, N]` (decoder steps x text tokens), gate logits
`[B, T]`, int32 lengths `[B]`. Every metric is computed per utterance over its valid frames/tokens only,
then averaged over the utterances of the batch that are non-empty (an all-padding item, length 0, is
left out rather than counted as 0 or NaN). Returned values are float32 scalars; with `reduction="sum"`
they are float32 pairs `(sum over present items, number of present items)`, so an evaluator can combine
batches exactly (sum the sums, sum the counts). Size and threshold arguments are keyword-only.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from taco_jax.losses import sequence_mask

_REDUCTIONS = ("mean", "sum")

Metric = jax.Array | tuple[jax.Array, jax.Array]  # a "mean" scalar or a "sum" (sum, count) pair


def _batch_mean(per_item: jax.Array, present: jax.Array, reduction: str = "mean") -> Metric:
    """Mean of `per_item` `[B]` over items where `present` `[B]` is True (0 if none); "sum": (sum, count)."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}; expected one of {_REDUCTIONS}")
    per_item = jnp.where(present, per_item, 0.0)
    if reduction == "sum":
        return jnp.sum(per_item).astype(jnp.float32), jnp.sum(present).astype(jnp.float32)
    return (jnp.sum(per_item) / jnp.maximum(jnp.sum(present), 1)).astype(jnp.float32)


def _valid(alignments: jax.Array, text_len: jax.Array, dec_len: jax.Array):
    """(alignments with padding zeroed, frame mask `[B, T]`, token mask `[B, N]`, cell mask `[B, T, N]`)."""
    _, n_frames, n_tokens = alignments.shape
    frames, tokens = sequence_mask(dec_len, max_len=n_frames), sequence_mask(text_len, max_len=n_tokens)
    cells = frames[:, :, None] & tokens[:, None, :]
    return jnp.where(cells, alignments, 0.0), frames, tokens, cells


def _frame_mean(per_frame: jax.Array, frames: jax.Array, present: jax.Array, reduction: str) -> Metric:
    """Per-utterance mean of `per_frame` `[B, T]` over valid frames, then the batch mean (or "sum" pair)."""
    per_item = jnp.sum(jnp.where(frames, per_frame, 0.0), axis=1) / jnp.maximum(jnp.sum(frames, axis=1), 1)
    return _batch_mean(per_item, present, reduction)


def _present(text_len: jax.Array, dec_len: jax.Array) -> jax.Array:
    return (jnp.asarray(text_len) > 0) & (jnp.asarray(dec_len) > 0)


def band_diagonality(
    alignments: jax.Array, text_len: jax.Array, dec_len: jax.Array, *, band: int = 3, reduction: str = "mean"
) -> Metric:
    """Mean over valid frames t of the attention mass on valid tokens n with |n - t * N_b / T_b| <= band tokens.

    1.0 for a perfectly diagonal alignment; about (2 band + 1) / N_b for uniform attention.
    """
    a, frames, _, cells = _valid(alignments, text_len, dec_len)
    _, n_frames, n_tokens = alignments.shape
    n_b = jnp.asarray(text_len, jnp.int32)[:, None, None]
    t_b = jnp.asarray(dec_len, jnp.int32)[:, None, None]
    t = jnp.arange(n_frames, dtype=jnp.int32)[None, :, None]
    n = jnp.arange(n_tokens, dtype=jnp.int32)[None, None, :]
    # |n - t N/T| <= band  <=>  |n T - t N| <= band T, in exact integer arithmetic so band edges are not
    # decided by float rounding.
    in_band = jnp.abs(n * t_b - t * n_b) <= band * t_b
    mass = jnp.sum(jnp.where(in_band & cells, a, 0.0), axis=2)  # [B, T]
    return _frame_mean(mass, frames, _present(text_len, dec_len), reduction)


def attention_focus(
    alignments: jax.Array, text_len: jax.Array, dec_len: jax.Array, *, reduction: str = "mean"
) -> Metric:
    """Mean over valid frames of the largest attention weight on a valid token (1.0 = one-hot)."""
    a, frames, _, _ = _valid(alignments, text_len, dec_len)
    # Zero-filled padding is a safe floor for the max: attention weights are non-negative.
    return _frame_mean(jnp.max(a, axis=2), frames, _present(text_len, dec_len), reduction)


def attention_monotonicity(
    alignments: jax.Array, text_len: jax.Array, dec_len: jax.Array, *, reduction: str = "mean"
) -> Metric:
    """Fraction of consecutive valid frame pairs (t-1, t) whose argmax token does not move backwards.

    An utterance with a single valid frame has no pairs and scores 1.0.
    """
    _, frames, _, cells = _valid(alignments, text_len, dec_len)
    peak = jnp.argmax(jnp.where(cells, alignments, -jnp.inf), axis=2)  # [B, T], over valid tokens only
    forward = (peak[:, 1:] >= peak[:, :-1]).astype(jnp.float32)  # [B, T-1]; pair (t-1, t) at index t-1
    pairs = frames[:, 1:]  # both frames valid <=> frame t valid
    n_pairs = jnp.sum(pairs, axis=1)
    per_item = jnp.where(n_pairs > 0, jnp.sum(jnp.where(pairs, forward, 0.0), axis=1) / jnp.maximum(n_pairs, 1), 1.0)
    return _batch_mean(per_item, _present(text_len, dec_len), reduction)


def attention_coverage(
    alignments: jax.Array,
    text_len: jax.Array,
    dec_len: jax.Array,
    *,
    threshold: float = 0.5,
    reduction: str = "mean",
) -> Metric:
    """Fraction of valid tokens whose attention summed over valid frames reaches `threshold`."""
    a, _, tokens, _ = _valid(alignments, text_len, dec_len)
    covered = (jnp.sum(a, axis=1) >= threshold).astype(jnp.float32)  # [B, N]
    per_item = jnp.sum(jnp.where(tokens, covered, 0.0), axis=1) / jnp.maximum(jnp.sum(tokens, axis=1), 1)
    return _batch_mean(per_item, _present(text_len, dec_len), reduction)


def gate_accuracy(logits: jax.Array, target: jax.Array, mel_len: jax.Array, *, reduction: str = "mean") -> Metric:
    """Fraction of valid frames where (sigmoid(logit) > 0.5) == target; logits, target `[B, T]`.

    mel_len `[B]` counts the gate's own positions: decoder steps for a per-step gate.
    """
    frames = sequence_mask(mel_len, max_len=logits.shape[1])
    correct = ((logits > 0) == (target > 0.5)).astype(jnp.float32)  # sigmoid(x) > 0.5  <=>  x > 0
    return _frame_mean(correct, frames, jnp.asarray(mel_len) > 0, reduction)


def stop_frame_error(logits: jax.Array, mel_len: jax.Array, *, reduction: str = "mean") -> Metric:
    """Mean |predicted stop frame - (mel_len - 1)| in frames; logits `[B, T]`.

    The predicted stop frame is the first valid frame with sigmoid(logit) > 0.5, or mel_len[b] if the
    gate never fires within the utterance: padded frames are not searched (their teacher-forced gate
    outputs are meaningless), so a gate that fires too late scores 1, independent of the padding.
    """
    frames = sequence_mask(mel_len, max_len=logits.shape[1])
    fires = (logits > 0) & frames
    mel_len = jnp.asarray(mel_len, jnp.int32)
    first = jnp.where(jnp.any(fires, axis=1), jnp.argmax(fires, axis=1), mel_len)
    return _batch_mean(jnp.abs(first - (mel_len - 1)).astype(jnp.float32), mel_len > 0, reduction)


def alignment_metrics(
    alignments: jax.Array,
    text_len: jax.Array,
    dec_len: jax.Array,
    *,
    band: int = 3,
    coverage_threshold: float = 0.5,
    reduction: str = "mean",
) -> dict[str, Metric]:
    """All alignment diagnostics of alignments `[B, T_dec, N]`, text_len `[B]` tokens, dec_len `[B]` decoder steps.

    Keys align_diag (band: tokens), align_focus, align_monotonic, align_coverage (coverage_threshold:
    attention mass). "sum": each value is a (sum over present items, number of present items) pair.
    """
    return {
        "align_diag": band_diagonality(alignments, text_len, dec_len, band=band, reduction=reduction),
        "align_focus": attention_focus(alignments, text_len, dec_len, reduction=reduction),
        "align_monotonic": attention_monotonicity(alignments, text_len, dec_len, reduction=reduction),
        "align_coverage": attention_coverage(
            alignments, text_len, dec_len, threshold=coverage_threshold, reduction=reduction
        ),
    }
