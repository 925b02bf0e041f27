"""Tests for taco_jax.losses against hand-computed values and ESPnet's published guided-attention mask."""

from __future__ import annotations

import math
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from taco_jax.losses import (
    LossWeights,
    alignment_consistency_loss,
    alignment_mask,
    decoder_lengths,
    guided_attention_loss,
    guided_attention_weights,
    masked_gate_loss,
    masked_mel_loss,
    mmi_ctc_loss,
    sequence_mask,
    tacotron2_loss,
)


def test_sequence_mask() -> None:
    mask = sequence_mask(jnp.array([0, 2, 4], jnp.int32), max_len=4)
    expected = [[False] * 4, [True, True, False, False], [True] * 4]
    assert mask.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(mask), expected)


def test_decoder_lengths() -> None:
    np.testing.assert_array_equal(np.asarray(decoder_lengths(jnp.array([0, 1, 6, 7, 8, 9]), r=3)), [0, 1, 2, 3, 3, 3])
    np.testing.assert_array_equal(np.asarray(decoder_lengths(jnp.array([5, 9]), r=1)), [5, 9])


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
        jitted = jax.jit(masked_gate_loss)(logits, target, mel_len, pos_weight=pw)
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
        assert float(jitted(align, text_len, dec_len, sigma=0.5, normalization=norm)) == pytest.approx(
            expected, rel=1e-6
        )
    with pytest.raises(ValueError, match="per_token"):
        guided_attention_loss(align, text_len, dec_len, sigma=0.5, normalization="per_token")


def test_guided_attention_loss_two_items_pool_counts() -> None:
    # Item 0 as above (sum a, 4 cells, 2 frames); item 1: N=1 token, T=3 frames, A=1 on the only token:
    # W[t, 0] = 1 - exp(-(0 - t/3)^2 / 0.5) for t = 0, 1, 2.
    align, _, _, a = _ga_case()
    align = align.at[1].set(jnp.array([[1.0, 5.0, 5.0], [1.0, 5.0, 5.0], [1.0, 5.0, 5.0]]))
    text_len, dec_len = jnp.array([2, 1]), jnp.array([2, 3])
    s1 = sum(1 - math.exp(-((t / 3) ** 2) / 0.5) for t in range(3))
    per_cell = guided_attention_loss(align, text_len, dec_len, sigma=0.5, normalization="per_cell")
    per_frame = guided_attention_loss(align, text_len, dec_len, sigma=0.5, normalization="per_frame")
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
        grad = np.asarray(jax.grad(guided_attention_loss)(align, text_len, dec_len, sigma=0.3, normalization=norm))
        valid = np.zeros((2, 6, 5), bool)
        valid[0, :4, :5] = True
        valid[1, :6, :3] = True
        assert np.all(grad[~valid] == 0)
        assert np.count_nonzero(grad[valid]) > 0.8 * valid.sum()  # only the W=0 cells are zero


# ------------------------------------------------------------------------------------------ full objective


def _random_case(seed: int, mel_len, text_len, *, t: int = 12, n: int = 7, r: int = 2, r_coarse: int = 4, full=False):
    """(outputs, targets) of random arrays: C = 5 mel channels, E = 8 style width, K = 9 CTC classes."""
    g = np.random.default_rng(seed)
    mel_len, text_len = np.asarray(mel_len, np.int32), np.asarray(text_len, np.int32)
    b, steps, c = len(mel_len), t // r, 5
    f32 = lambda x: jnp.asarray(np.asarray(x, np.float32))  # noqa: E731
    outputs = dict(
        mel=f32(g.normal(size=(b, t, c))),
        mel_post=f32(g.normal(size=(b, t, c))),
        gate=f32(g.normal(0, 3, (b, steps))),
        alignments=f32(g.dirichlet(np.ones(n), (b, steps))),
    )
    if full:
        outputs |= dict(
            tpse_style=f32(g.normal(size=(b, 8))),
            gst_style=f32(g.normal(size=(b, 8))),
            coarse_mel=f32(g.normal(size=(b, t, c))),
            coarse_alignments=f32(g.dirichlet(np.ones(n), (b, -(-t // r_coarse)))),
            mi_logits=f32(g.normal(size=(b, steps, 9))),
        )
    targets = dict(
        mel=f32(g.normal(size=(b, t, c))),
        mel_len=jnp.asarray(mel_len),
        gate=f32(np.arange(t)[None, :] >= mel_len[:, None] - 1),
        text_len=jnp.asarray(text_len),
        text=jnp.asarray(g.integers(1, 9, (b, n)).astype(np.int32)),
        r=r,
    )
    return outputs, targets


def _np_mse(pred, target, mel_len) -> float:
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    err = sum(np.sum((pred[i, :m] - target[i, :m]) ** 2) for i, m in enumerate(mel_len))
    return err / (np.sum(mel_len) * pred.shape[2])


def _np_bce(logits, target, steps, pos_weight) -> float:
    logits, target = np.asarray(logits, np.float64), np.asarray(target, np.float64)
    total = 0.0
    for i, s in enumerate(steps):
        x, y = logits[i, :s], target[i, :s]
        log_p, log_not_p = -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x)  # log sigmoid(x), log(1 - sigmoid(x))
        total += np.sum(-(pos_weight * y * log_p + (1 - y) * log_not_p))
    return total / np.sum(steps)


def _np_ga_per_frame(align, text_len, steps, sigma) -> float:
    align = np.asarray(align, np.float64)
    total = 0.0
    for i, (n_b, t_b) in enumerate(zip(text_len, steps, strict=True)):
        t, n = np.arange(t_b)[:, None], np.arange(n_b)[None, :]
        w = 1.0 - np.exp(-((n / n_b - t / t_b) ** 2) / (2 * sigma**2))
        total += np.sum(w * align[i, :t_b, :n_b])
    return total / np.sum(steps)


def test_tacotron2_loss_matches_numpy() -> None:
    mel_len, text_len = [12, 7, 4], [7, 3, 5]
    outputs, tg = _random_case(0, mel_len, text_len)
    weights = LossWeights(mel=0.7, gate=1.3, guided_attention=jnp.float32(2.5))
    r = tg.pop("r")
    loss = lambda o, tg, w: tacotron2_loss(  # noqa: E731
        SimpleNamespace(**o), **tg, r=r, weights=w, gate_pos_weight=4.0, ga_sigma=0.3, ga_normalization="per_frame"
    )
    total, terms = jax.jit(loss)(outputs, tg, weights)  # the GA weight is traced, as the controller's
    steps = [6, 4, 2]  # ceil(mel_len / 2)
    gate_target = np.asarray(tg["gate"])[:, 1::2]  # each step's last frame
    expected = {
        "mel_loss": _np_mse(outputs["mel"], tg["mel"], mel_len),
        "mel_post_loss": _np_mse(outputs["mel_post"], tg["mel"], mel_len),
        "gate_loss": _np_bce(outputs["gate"], gate_target, steps, 4.0),
        "ga_loss": _np_ga_per_frame(outputs["alignments"], text_len, steps, 0.3),
    }
    for key, value in expected.items():
        assert float(terms[key]) == pytest.approx(value, rel=1e-6), key
    e = expected
    want = 0.7 * (e["mel_loss"] + e["mel_post_loss"]) + 1.3 * e["gate_loss"] + 2.5 * e["ga_loss"]
    assert float(total) == pytest.approx(want, rel=1e-6)
    assert float(terms["loss"]) == float(total)
    assert np.array_equal(np.asarray(terms["ga_total"]), np.asarray(terms["ga_loss"]))
    assert set(terms) == {"loss", *expected, "ga_total"}  # no optional outputs, no optional terms


_FULL = dict(r_coarse=4, ctc_blank=0, weights=LossWeights(guided_attention=0.5))


def _jit_loss(outputs, tg, reduction="sum"):
    r = tg["r"]
    fn = jax.jit(lambda o, tg: tacotron2_loss(SimpleNamespace(**o), **tg, r=r, **_FULL, reduction=reduction))
    return fn(outputs, {k: v for k, v in tg.items() if k != "r"})


def test_tacotron2_loss_sum_pairs_combine_batches_exactly() -> None:
    out1, tg1 = _random_case(1, [12, 5], [7, 2], full=True)
    out2, tg2 = _random_case(2, [9, 12, 3], [4, 6, 7], full=True)
    both = (
        {k: jnp.concatenate([out1[k], out2[k]]) for k in out1},
        {k: v if k == "r" else jnp.concatenate([v, tg2[k]]) for k, v in tg1.items()},
    )
    _, mean = _jit_loss(*both, reduction="mean")
    (total1, pairs1), (_, pairs2) = _jit_loss(out1, tg1), _jit_loss(out2, tg2)
    assert set(pairs1) == set(mean) - {"loss", "ga_total"}
    for key, (s1, c1) in pairs1.items():
        s2, c2 = pairs2[key]
        assert c1.dtype == s1.dtype == jnp.float32 and float(c1) > 0, key
        assert float((s1 + s2) / (c1 + c2)) == pytest.approx(float(mean[key]), rel=1e-6), key
    # The total stays the batch's mean-based total.
    total_mean, _ = _jit_loss(out1, tg1, reduction="mean")
    assert np.array_equal(np.asarray(total1), np.asarray(total_mean))
    assert float(mean["ga_total"]) == pytest.approx(float(mean["ga_loss"] + mean["ddc_ga_loss"]), rel=1e-7)


def test_tacotron2_loss_zero_length_rows_contribute_nothing() -> None:
    out, tg = _random_case(3, [12, 5], [7, 2], full=True)
    junk_out, junk_tg = _random_case(4, [0], [0], full=True)
    junk_out = {k: jnp.full_like(v, jnp.nan) for k, v in junk_out.items()}  # nothing of it may leak in
    padded = (
        {k: jnp.concatenate([out[k], junk_out[k]]) for k in out},
        {k: v if k == "r" else jnp.concatenate([v, junk_tg[k]]) for k, v in tg.items()},
    )
    _, pairs = _jit_loss(out, tg)
    _, with_row = _jit_loss(*padded)
    for key, (total, count) in pairs.items():
        assert float(with_row[key][1]) == float(count), key
        assert float(with_row[key][0]) == pytest.approx(float(total), rel=1e-6), key


def test_tacotron2_loss_rejects_bad_shapes() -> None:
    out, tg = _random_case(5, [12, 5], [7, 2])
    channels_first = tg | {"mel": jnp.swapaxes(tg["mel"], 1, 2)}  # NVIDIA's [B, n_mels, T]
    with pytest.raises(ValueError, match=r"channels-first.*transpose it to \[B, T, n_mels\]"):
        tacotron2_loss(SimpleNamespace(**out), **channels_first)
    with pytest.raises(ValueError, match="rank 3"):
        tacotron2_loss(SimpleNamespace(**out), **tg | {"mel": tg["mel"][0]})
    with pytest.raises(ValueError, match="outputs.gate"):
        tacotron2_loss(SimpleNamespace(**out | {"gate": out["gate"][:, :-1]}), **tg)
    with pytest.raises(ValueError, match="text"):
        tacotron2_loss(SimpleNamespace(**out), **tg | {"text": tg["text"][:, :-1]})
    full, _ = _random_case(5, [12, 5], [7, 2], full=True)
    with pytest.raises(ValueError, match="r_coarse"):
        tacotron2_loss(SimpleNamespace(**full), **tg)


def test_size_arguments_are_keyword_only() -> None:
    lens, a = jnp.array([2, 3]), jnp.full((2, 3, 4), 0.25)
    mel = jnp.zeros((2, 3, 5))
    calls = [
        lambda: sequence_mask(lens, 4),
        lambda: alignment_mask(lens, lens, 3, 4),
        lambda: decoder_lengths(lens, 2),
        lambda: masked_mel_loss(mel, mel, lens, "l1"),
        lambda: masked_gate_loss(mel[..., 0], mel[..., 0], lens, 2.0),
        lambda: guided_attention_weights(lens, lens, 3, 4, 0.2),
        lambda: guided_attention_loss(a, lens, lens, 0.2),
        lambda: mmi_ctc_loss(a, lens, lens[:, None], lens, 0),
        lambda: alignment_consistency_loss(a, a, lens, lens, 1, 1),
        lambda: tacotron2_loss(SimpleNamespace(mel=mel), mel),
    ]
    for call in calls:
        with pytest.raises(TypeError):
            call()
