"""Tests for taco_jax.diagnostics against hand-computed values and unpadded per-utterance computations."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from taco_jax.diagnostics import (
    alignment_metrics,
    attention_coverage,
    attention_focus,
    attention_monotonicity,
    band_diagonality,
    gate_accuracy,
    stop_frame_error,
)


def _diagonal(n_frames: int, n_tokens: int) -> np.ndarray:
    """`[n_frames, n_tokens]` one-hot alignment A[t, floor(t N / T)] = 1."""
    a = np.zeros((n_frames, n_tokens), np.float32)
    a[np.arange(n_frames), np.arange(n_frames) * n_tokens // n_frames] = 1.0
    return a


# One compiled program per shape: eager op-by-op dispatch compiles every primitive separately (slow).
_jit_metrics = jax.jit(alignment_metrics)


def _metrics(a: np.ndarray, text_len, dec_len, **kw) -> dict[str, float]:
    out = _jit_metrics(jnp.asarray(a), jnp.asarray(text_len, jnp.int32), jnp.asarray(dec_len, jnp.int32), **kw)
    return {k: float(v) for k, v in out.items()}


def test_perfect_diagonal_scores_one() -> None:
    m = _metrics(_diagonal(40, 20)[None], [20], [40])
    assert m["align_diag"] == pytest.approx(1.0)
    assert m["align_focus"] == pytest.approx(1.0)
    assert m["align_monotonic"] == pytest.approx(1.0)
    assert m["align_coverage"] == pytest.approx(1.0)  # every token gets 2 frames of mass 1


def test_uniform_attention_hand_computed() -> None:
    # N=20 tokens, T=40 frames, b=3, A = 1/20 everywhere. The band centre is c = t/2.
    #  even t = 2k (c = k):       tokens k-3..k+3 clipped to 0..19 -> k=0..19 counts 4,5,6,7x14,6,5,4 = 128
    #  odd t = 2k+1 (c = k+0.5):  tokens k-2..k+3 clipped          -> k=0..19 counts 4,5,6x15,5,4,3   = 111
    # diagonality = (128 + 111) / 40 frames / 20 = 0.29875 (vs the edge-free (2b+1)/N = 0.35).
    m = _metrics(np.full((1, 40, 20), 1 / 20, np.float32), [20], [40])
    assert m["align_diag"] == pytest.approx(239 / 800, abs=1e-6)
    assert m["align_focus"] == pytest.approx(1 / 20, abs=1e-6)
    assert m["align_coverage"] == pytest.approx(1.0)  # each token gets 40/20 = 2 >= 0.5
    with_threshold = _metrics(np.full((1, 40, 20), 1 / 20, np.float32), [20], [40], coverage_threshold=2.5)
    assert with_threshold["align_coverage"] == 0.0


def test_reversed_alignment_is_not_monotonic() -> None:
    # T = N = 10: argmax goes 9, 8, ..., 0, so every one of the 9 pairs moves backwards.
    rev = _diagonal(10, 10)[:, ::-1][None]
    assert _metrics(rev, [10], [10])["align_monotonic"] == 0.0
    # T=40, N=20: argmax 19,19,18,18,...: of 39 pairs, the 20 within a token stay (ok), 19 go back.
    rev = _diagonal(40, 20)[:, ::-1][None]
    assert _metrics(rev, [20], [40])["align_monotonic"] == pytest.approx(20 / 39)


def test_coverage_and_focus_hand_values() -> None:
    # T=4 frames, N=3 tokens. Token sums: 1.2, 0.4, 2.4 -> 2 of 3 reach 0.5. Frame maxima: .6 .6 .8 1.
    a = np.array([[0.4, 0.0, 0.6], [0.6, 0.4, 0.0], [0.2, 0.0, 0.8], [0.0, 0.0, 1.0]], np.float32)[None]
    lens = (jnp.array([3]), jnp.array([4]))
    assert float(attention_coverage(jnp.asarray(a), *lens)) == pytest.approx(2 / 3)
    assert float(attention_focus(jnp.asarray(a), *lens)) == pytest.approx((0.6 + 0.6 + 0.8 + 1.0) / 4)
    # argmax: 2, 0, 2, 2 -> pairs (2->0 back), (0->2 ok), (2->2 ok).
    assert float(attention_monotonicity(jnp.asarray(a), *lens)) == pytest.approx(2 / 3)
    # b=0 band: centres t*3/4 = 0, .75, 1.5, 2.25 -> only (t=0, n=0) is within 0: mass .4 / 4 frames.
    assert float(band_diagonality(jnp.asarray(a), *lens, band=0)) == pytest.approx(0.1)


def _random_alignment(rng: np.random.Generator, n_frames: int, n_tokens: int) -> np.ndarray:
    logits = rng.normal(size=(n_frames, n_tokens)) * 3
    a = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (a / a.sum(axis=1, keepdims=True)).astype(np.float32)


def test_padding_never_counts_and_batch_is_mean_of_utterances() -> None:
    rng = np.random.default_rng(0)
    shapes = [(37, 15), (50, 22), (12, 4)]  # (frames, tokens) per utterance
    items = [_random_alignment(rng, t, n) for t, n in shapes]
    single = [_metrics(a[None], [a.shape[1]], [a.shape[0]]) for a in items]

    t_max, n_max = 64, 30
    batch = rng.uniform(5.0, 50.0, size=(len(items), t_max, n_max)).astype(np.float32)  # junk padding
    for i, a in enumerate(items):
        batch[i, : a.shape[0], : a.shape[1]] = a
    text_len, dec_len = [n for _, n in shapes], [t for t, _ in shapes]
    padded = _metrics(batch, text_len, dec_len)
    for key in padded:
        assert padded[key] == pytest.approx(np.mean([s[key] for s in single]), abs=1e-6), key

    # An all-padding item (length 0) is left out of the batch mean rather than counted.
    with_empty = np.concatenate([batch, rng.uniform(5.0, 50.0, size=(1, t_max, n_max)).astype(np.float32)])
    assert _metrics(with_empty, text_len + [0], dec_len + [0]) == pytest.approx(padded, abs=1e-6)


def test_gate_metrics() -> None:
    # Item 0: 5 frames, target fires at frame 4; logits fire at frames 2 and 4 -> 4/5 correct,
    #   first firing at 2, error |2 - 4| = 2. Padding logits fire (junk) but must not count.
    # Item 1: 3 frames, gate never fires within them -> stops at mel_len = 3, error |3 - 2| = 1;
    #   2/3 correct (frames 0, 1 are 0 and predicted 0; frame 2 is 1 but predicted 0).
    logits = jnp.array([[-5.0, -1.0, 2.0, -3.0, 4.0, 9.0, 9.0], [-2.0, -2.0, -0.5, 9.0, 9.0, 9.0, 9.0]])
    target = jnp.array([[0, 0, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0, 0]], jnp.float32)
    mel_len = jnp.array([5, 3], jnp.int32)
    assert float(gate_accuracy(logits, target, mel_len)) == pytest.approx((4 / 5 + 2 / 3) / 2)
    assert float(stop_frame_error(logits, mel_len)) == pytest.approx((2 + 1) / 2)
    # A perfect gate: fires exactly at mel_len - 1.
    perfect = jnp.where(target > 0, 10.0, -10.0)
    assert float(gate_accuracy(perfect, target, mel_len)) == 1.0
    assert float(stop_frame_error(perfect, mel_len)) == 0.0


def test_jit_matches_eager() -> None:
    rng = np.random.default_rng(1)
    a = jnp.asarray(rng.uniform(0, 1, (3, 20, 9)).astype(np.float32))
    text_len, dec_len = jnp.array([9, 5, 7]), jnp.array([20, 11, 16])
    eager = alignment_metrics(a, text_len, dec_len, band=2, coverage_threshold=0.7)
    jitted = jax.jit(alignment_metrics)(a, text_len, dec_len, band=2, coverage_threshold=0.7)
    for key, value in eager.items():
        assert float(jitted[key]) == pytest.approx(float(value), abs=1e-6), key
    logits = jnp.asarray(rng.normal(size=(3, 20)).astype(np.float32))
    target = (jnp.arange(20)[None, :] == (dec_len - 1)[:, None]).astype(jnp.float32)
    assert float(jax.jit(gate_accuracy)(logits, target, dec_len)) == pytest.approx(
        float(gate_accuracy(logits, target, dec_len))
    )
    assert float(jax.jit(stop_frame_error)(logits, dec_len)) == float(stop_frame_error(logits, dec_len))


def test_sum_reduction_combines_batches_exactly() -> None:
    rng = np.random.default_rng(2)
    a = jnp.asarray(rng.dirichlet(np.ones(9), (5, 20)).astype(np.float32))
    logits = jnp.asarray(rng.normal(size=(5, 20)).astype(np.float32))
    text_len, dec_len = jnp.array([9, 5, 0, 7, 3]), jnp.array([20, 11, 0, 16, 4])  # item 2: padding row
    target = (jnp.arange(20)[None, :] == (dec_len - 1)[:, None]).astype(jnp.float32)

    def metrics(sl, reduction):
        out = alignment_metrics(a[sl], text_len[sl], dec_len[sl], band=2, reduction=reduction)
        out["gate_acc"] = gate_accuracy(logits[sl], target[sl], dec_len[sl], reduction=reduction)
        out["stop_err"] = stop_frame_error(logits[sl], dec_len[sl], reduction=reduction)
        return out

    mean = jax.jit(lambda: metrics(slice(None), "mean"))()
    first, second = jax.jit(lambda: (metrics(slice(0, 3), "sum"), metrics(slice(3, 5), "sum")))()
    for key, value in mean.items():
        (s1, c1), (s2, c2) = first[key], second[key]
        assert (float(c1), float(c2)) == (2.0, 2.0), key  # the padding row counts nowhere
        assert float((s1 + s2) / (c1 + c2)) == pytest.approx(float(value), rel=1e-6), key
    with pytest.raises(TypeError):
        alignment_metrics(a, text_len, dec_len, 2)  # band is keyword-only
