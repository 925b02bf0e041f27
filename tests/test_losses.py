"""Tests for taco_jax.losses against hand-computed values and ESPnet's published guided-attention mask."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from taco_jax.losses import (
    decoder_lengths,
    guided_attention_loss,
    guided_attention_weights,
    masked_gate_loss,
    masked_mel_loss,
    sequence_mask,
)


def test_sequence_mask() -> None:
    mask = sequence_mask(jnp.array([0, 2, 4], jnp.int32), 4)
    expected = [[False] * 4, [True, True, False, False], [True] * 4]
    assert mask.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(mask), expected)


def test_decoder_lengths() -> None:
    np.testing.assert_array_equal(np.asarray(decoder_lengths(jnp.array([0, 1, 6, 7, 8, 9]), 3)), [0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(np.asarray(decoder_lengths(jnp.array([5, 9]), 1)), [5, 9])


def _mel_case():
    # B=2, T=3, C=2. Item 0 has 2 valid frames, item 1 has 1; padding holds junk that must not count.
    pred = jnp.array(
        [
            [[1.0, 2.0], [0.0, -1.0], [100.0, jnp.inf]],
            [[0.5, 0.5], [50.0, 50.0], [jnp.nan, 7.0]],
        ]
    )
    target = jnp.zeros((2, 3, 2))
    return pred, target, jnp.array([2, 1], jnp.int32)


def test_masked_mel_loss_hand_values() -> None:
    pred, target, mel_len = _mel_case()
    # Valid elements: 1, 2, 0, -1 (item 0) and 0.5, 0.5 (item 1): 3 valid frames x 2 channels = 6.
    mse = (1 + 4 + 0 + 1 + 0.25 + 0.25) / 6
    l1 = (1 + 2 + 0 + 1 + 0.5 + 0.5) / 6
    assert float(masked_mel_loss(pred, target, mel_len)) == pytest.approx(mse, rel=1e-6)
    assert float(masked_mel_loss(pred, target, mel_len, kind="l1")) == pytest.approx(l1, rel=1e-6)
    jitted = jax.jit(masked_mel_loss, static_argnames="kind")
    assert float(jitted(pred, target, mel_len, kind="l1")) == pytest.approx(l1, rel=1e-6)
    grad = jax.grad(masked_mel_loss)(pred, target, mel_len)
    assert np.all(np.isfinite(np.asarray(grad)))
    assert np.all(np.asarray(grad)[0, 2] == 0) and np.all(np.asarray(grad)[1, 1:] == 0)
    with pytest.raises(ValueError, match="huber"):
        masked_mel_loss(pred, target, mel_len, kind="huber")


def test_masked_gate_loss_hand_values() -> None:
    logits = jnp.array([[0.0, 0.0, 2.0], [-3.0, 99.0, -99.0]])
    target = jnp.array([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])
    mel_len = jnp.array([3, 1], jnp.int32)
    sp = lambda v: math.log1p(math.exp(v))  # softplus: -log sigmoid(-v)
    # Valid frames: (x=0, y=1), (x=0, y=0), (x=2, y=1), (x=-3, y=0). -log sigmoid(x) = softplus(-x).
    for pw in (1.0, 5.0):
        expected = (pw * sp(0.0) + sp(0.0) + pw * sp(-2.0) + sp(-3.0)) / 4
        assert float(masked_gate_loss(logits, target, mel_len, pos_weight=pw)) == pytest.approx(expected, rel=1e-6)
        jitted = jax.jit(masked_gate_loss)(logits, target, mel_len, pw)
        assert float(jitted) == pytest.approx(expected, rel=1e-6)
    # Stable at extreme logits: log(sigmoid(-1000)) would underflow to -inf done naively.
    big = masked_gate_loss(jnp.array([[-1000.0]]), jnp.array([[1.0]]), jnp.array([1]))
    assert float(big) == pytest.approx(1000.0, rel=1e-6)


def test_guided_attention_weights_espnet_fixture() -> None:
    # ESPnet's _make_guided_attention_mask(ilen=5, olen=5, sigma=0.4) docstring, first row.
    w = guided_attention_weights(jnp.array([5]), jnp.array([5]), n_tokens=5, n_frames=5, sigma=0.4)
    np.testing.assert_allclose(np.asarray(w[0, 0]), [0.0000, 0.1175, 0.3935, 0.6753, 0.8647], atol=1e-4)
    # Symmetric for ilen == olen, zero on the diagonal.
    np.testing.assert_allclose(np.asarray(w[0]), np.asarray(w[0]).T, atol=1e-6)
    np.testing.assert_allclose(np.diag(np.asarray(w[0])), 0.0, atol=1e-7)


def test_guided_attention_weights_zero_in_padding() -> None:
    w = np.asarray(guided_attention_weights(jnp.array([5, 3]), jnp.array([5, 4]), n_tokens=6, n_frames=7, sigma=0.4))
    assert w.shape == (2, 7, 6)
    assert np.all(w[0, 5:] == 0) and np.all(w[0, :, 5:] == 0)
    assert np.all(w[1, 4:] == 0) and np.all(w[1, :, 3:] == 0)
    np.testing.assert_allclose(w[0, 0, :5], [0.0000, 0.1175, 0.3935, 0.6753, 0.8647], atol=1e-4)
    # Item 1 uses its own lengths: W[1, t=0, n=1] = 1 - exp(-(1/3)^2 / 0.32).
    assert w[1, 0, 1] == pytest.approx(1 - math.exp(-(1 / 9) / 0.32), abs=1e-6)


def _ga_case():
    # Item 0: N=2 tokens, T=2 frames, uniform 0.5 attention, sigma=0.5:
    #   W = [[0, a], [a, 0]] with a = 1 - exp(-(1/2)^2 / (2 * 0.25)) = 1 - exp(-0.5).
    #   sum W*A = 2 * 0.5 * a = a.
    # Item 1: all padding (lengths 0), filled with junk.
    align = jnp.array(
        [
            [[0.5, 0.5, 9.0], [0.5, 0.5, 9.0], [9.0, 9.0, 9.0]],
            [[7.0, 7.0, 7.0], [7.0, 7.0, 7.0], [7.0, 7.0, 7.0]],
        ]
    )
    return align, jnp.array([2, 0], jnp.int32), jnp.array([2, 0], jnp.int32), 1 - math.exp(-0.5)


def test_guided_attention_loss_hand_values() -> None:
    align, text_len, dec_len, a = _ga_case()
    per_cell = guided_attention_loss(align, text_len, dec_len, sigma=0.5, normalization="per_cell")
    per_frame = guided_attention_loss(align, text_len, dec_len, sigma=0.5, normalization="per_frame")
    assert float(per_cell) == pytest.approx(a / 4, rel=1e-6)  # 4 valid cells
    assert float(per_frame) == pytest.approx(a / 2, rel=1e-6)  # 2 valid frames
    jitted = jax.jit(guided_attention_loss, static_argnames="normalization")
    for norm, expected in (("per_cell", a / 4), ("per_frame", a / 2)):
        assert float(jitted(align, text_len, dec_len, 0.5, normalization=norm)) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="per_token"):
        guided_attention_loss(align, text_len, dec_len, sigma=0.5, normalization="per_token")


def test_guided_attention_loss_two_items_pool_counts() -> None:
    # Item 0 as above (sum a, 4 cells, 2 frames); item 1: N=1 token, T=3 frames, A=1 on the only token:
    # W[t, 0] = 1 - exp(-(0 - t/3)^2 / 0.5) for t = 0, 1, 2.
    align, _, _, a = _ga_case()
    align = align.at[1].set(jnp.array([[1.0, 5.0, 5.0], [1.0, 5.0, 5.0], [1.0, 5.0, 5.0]]))
    text_len, dec_len = jnp.array([2, 1]), jnp.array([2, 3])
    s1 = sum(1 - math.exp(-((t / 3) ** 2) / 0.5) for t in range(3))
    per_cell = guided_attention_loss(align, text_len, dec_len, 0.5, "per_cell")
    per_frame = guided_attention_loss(align, text_len, dec_len, 0.5, "per_frame")
    assert float(per_cell) == pytest.approx((a + s1) / (4 + 3), rel=1e-6)
    assert float(per_frame) == pytest.approx((a + s1) / (2 + 3), rel=1e-6)


def test_guided_attention_loss_prefers_diagonal() -> None:
    n_tok, n_frm = 12, 30
    diag = np.zeros((1, n_frm, n_tok), np.float32)
    diag[0, np.arange(n_frm), np.arange(n_frm) * n_tok // n_frm] = 1.0
    uniform = np.full((1, n_frm, n_tok), 1.0 / n_tok, np.float32)
    lens = (jnp.array([n_tok]), jnp.array([n_frm]))
    for norm in ("per_cell", "per_frame"):
        d = float(guided_attention_loss(jnp.asarray(diag), *lens, sigma=0.2, normalization=norm))
        u = float(guided_attention_loss(jnp.asarray(uniform), *lens, sigma=0.2, normalization=norm))
        assert d < 0.1 * u


def test_guided_attention_loss_grad_zero_in_padding() -> None:
    align = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (2, 6, 5)).astype(np.float32))
    text_len, dec_len = jnp.array([5, 3]), jnp.array([4, 6])
    for norm in ("per_cell", "per_frame"):
        grad = np.asarray(jax.grad(guided_attention_loss)(align, text_len, dec_len, 0.3, norm))
        valid = np.zeros((2, 6, 5), bool)
        valid[0, :4, :5] = True
        valid[1, :6, :3] = True
        assert np.all(grad[~valid] == 0)
        assert np.count_nonzero(grad[valid]) > 0.8 * valid.sum()  # only the W=0 cells are zero
