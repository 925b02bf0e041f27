"""Model behaviour: PyTorch-semantics recurrences, masking, padding invariance, inference stopping."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from taco_jax.model import build_model
from taco_jax.model.layers import bidirectional_lstm, reverse_padded, run_lstm


def numpy_lstm(p, x):
    """Reference PyTorch LSTM (gate order i, f, g, o) over one unpadded sequence x [T, in]."""
    w_ih, w_hh, b = (np.asarray(p[k], np.float64) for k in ("w_ih", "w_hh", "bias"))
    h = np.zeros(w_hh.shape[0])
    c = np.zeros(w_hh.shape[0])
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    out = []
    for xt in np.asarray(x, np.float64):
        i, f, g, o = np.split(xt @ w_ih + h @ w_hh + b, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def _lstm_params(key, n_in, n_h):
    k1, k2, k3 = jax.random.split(key, 3)
    return {
        "w_ih": jax.random.normal(k1, (n_in, 4 * n_h)) * 0.3,
        "w_hh": jax.random.normal(k2, (n_h, 4 * n_h)) * 0.3,
        "bias": jax.random.normal(k3, (4 * n_h,)) * 0.1,
    }


def test_lstm_matches_pytorch_semantics_and_honours_lengths():
    p_f = _lstm_params(jax.random.PRNGKey(0), 5, 4)
    p_b = _lstm_params(jax.random.PRNGKey(1), 5, 4)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 7, 5))
    lengths = jnp.array([7, 4])
    out = np.asarray(bidirectional_lstm(p_f, p_b, x, lengths))
    for b, n in enumerate([7, 4]):
        xb = np.asarray(x[b, :n])
        fwd = numpy_lstm(p_f, xb)
        bwd = numpy_lstm(p_b, xb[::-1])[::-1]  # the backward direction starts at this item's last token
        np.testing.assert_allclose(out[b, :n, :4], fwd, atol=1e-5)
        np.testing.assert_allclose(out[b, :n, 4:], bwd, atol=1e-5)
        assert np.all(out[b, n:] == 0.0)  # padded positions are exactly zero (as pad_packed_sequence)
    single = run_lstm(p_f, x[1:, :4], jnp.array([4]))
    np.testing.assert_allclose(np.asarray(single[0]), out[1, :4, :4], atol=1e-6)


def test_reverse_padded_keeps_padding_in_place():
    x = jnp.arange(10).reshape(2, 5)[..., None]
    y = reverse_padded(x, jnp.array([5, 3]))[..., 0]
    assert y.tolist() == [[4, 3, 2, 1, 0], [7, 6, 5, 8, 9]]


@pytest.fixture(scope="module")
def tiny(tiny_model_cfg):
    model = build_model(tiny_model_cfg, 40)
    text = jnp.ones((1, 4), jnp.int32)
    mel = jnp.zeros((1, 6, 80))
    variables = model.init(
        {"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)},
        text, jnp.array([4]), mel, jnp.array([6]),
    )  # fmt: skip
    return model, variables


def _batch(seed, b, n, t, text_len, mel_len):
    rng = np.random.default_rng(seed)
    text = np.zeros((b, n), np.int32)
    mel = np.zeros((b, t, 80), np.float32)
    for i in range(b):
        text[i, : text_len[i]] = rng.integers(1, 40, text_len[i])
        mel[i, : mel_len[i]] = rng.normal(size=(mel_len[i], 80))
    return jnp.asarray(text), jnp.asarray(text_len, jnp.int32), jnp.asarray(mel), jnp.asarray(mel_len, jnp.int32)


def test_outputs_invariant_to_padding_amount(tiny):
    """Eval-mode outputs on valid frames do not depend on how much padding the bucket adds."""
    model, variables = tiny
    text, tl, mel, ml = _batch(0, 2, 9, 12, [9, 5], [12, 7])
    small = model.apply(variables, text, tl, mel, ml)
    big_text = jnp.pad(text, ((0, 0), (0, 7)))
    big_mel = jnp.pad(mel, ((0, 0), (0, 9), (0, 0)))
    big = model.apply(variables, big_text, tl, big_mel, ml)
    for i, (n, t) in enumerate([(9, 12), (5, 7)]):
        steps = math.ceil(t / 3)
        np.testing.assert_allclose(big.mel[i, :t], small.mel[i, :t], atol=1e-5)
        np.testing.assert_allclose(big.mel_post[i, :t], small.mel_post[i, :t], atol=1e-5)
        np.testing.assert_allclose(big.gate[i, :steps], small.gate[i, :steps], atol=1e-5)
        np.testing.assert_allclose(big.alignments[i, :steps, :n], small.alignments[i, :steps, :n], atol=1e-5)
        assert float(jnp.abs(big.alignments[i, :, n:]).max()) == 0.0  # padded tokens get no attention
        assert float(jnp.abs(big.mel_post[i, t:]).max()) == 0.0  # padded frames are masked
    np.testing.assert_allclose(np.asarray(small.alignments.sum(-1)), 1.0, atol=1e-5)


def test_batch_items_are_independent(tiny):
    model, variables = tiny
    text, tl, mel, ml = _batch(1, 3, 8, 9, [8, 3, 6], [9, 4, 6])
    full = model.apply(variables, text, tl, mel, ml)
    alone = model.apply(variables, text[1:2], tl[1:2], mel[1:2], ml[1:2])
    np.testing.assert_allclose(full.mel_post[1], alone.mel_post[0], atol=1e-5)


def test_teacher_forced_shapes_and_reduction_factor(tiny):
    model, variables = tiny
    text, tl, mel, ml = _batch(2, 2, 6, 15, [6, 4], [15, 10])
    out = model.apply(variables, text, tl, mel, ml)
    assert out.mel.shape == (2, 15, 80) and out.gate.shape == (2, 5) and out.alignments.shape == (2, 5, 6)
    assert float(out.gate[1, 4]) == 1e3  # decoder step 4 starts at frame 12 >= 10: padding
    with pytest.raises(ValueError, match="multiple of n_frames_per_step"):
        model.apply(variables, text, tl, mel[:, :14], ml)


def test_inference_stops_on_gate_and_enforces_max_steps(tiny):
    model, variables = tiny
    text, tl, _, _ = _batch(3, 2, 6, 3, [6, 3], [3, 3])

    def with_gate_bias(value):
        params = jax.tree_util.tree_map(lambda x: x, variables["params"])
        params["decoder"]["gate_layer"]["kernel"] = jnp.zeros_like(params["decoder"]["gate_layer"]["kernel"])
        params["decoder"]["gate_layer"]["bias"] = jnp.full((1,), value)
        return {"params": params, "batch_stats": variables["batch_stats"]}

    rngs = {"dropout": jax.random.PRNGKey(0)}
    never = model.apply(with_gate_bias(-50.0), text, tl, 30, method=model.infer, rngs=rngs)
    assert never.lengths.tolist() == [30, 30] and not bool(never.stopped.any())
    now = model.apply(with_gate_bias(50.0), text, tl, 30, method=model.infer, rngs=rngs)
    assert now.lengths.tolist() == [3, 3] and bool(now.stopped.all())  # one decoder step of r=3 frames
    assert float(jnp.abs(now.mel_post[:, 3:]).max()) == 0.0


def test_initialisation_follows_nvidia_gains(tiny):
    _, variables = tiny
    q = np.asarray(variables["params"]["decoder"]["query_layer"]["kernel"])  # tanh gain, xavier uniform
    bound = 5 / 3 * math.sqrt(6 / (q.shape[0] + q.shape[1]))
    assert np.abs(q).max() <= bound and np.abs(q).max() > 0.9 * bound
    lstm = np.asarray(variables["params"]["decoder"]["attention_rnn"]["w_hh"])
    h = lstm.shape[0]
    assert np.abs(lstm).max() <= 1 / math.sqrt(h) and np.abs(lstm).max() > 0.9 / math.sqrt(h)


def test_location_features_equal_a_same_convolution():
    from taco_jax.model.recurrence import location_features

    w = jax.random.uniform(jax.random.PRNGKey(0), (3, 17))
    cum = jax.random.uniform(jax.random.PRNGKey(1), (3, 17))
    kernel = jax.random.normal(jax.random.PRNGKey(2), (7, 2, 5))
    reference = jax.lax.conv_general_dilated(
        jnp.stack([w, cum], -1), kernel, (1,), [(3, 3)], dimension_numbers=("NWC", "WIO", "NWC")
    )
    np.testing.assert_allclose(np.asarray(location_features(w, cum, kernel)), np.asarray(reference), atol=1e-5)


def reference_decoder(p, memory, text_len, mel, r):
    """NVIDIA's decoder loop written plainly (concatenated LSTM inputs, lax.conv location layer, -inf mask),
    eval mode. Returns mel [B, T, 80], gate logits [B, T/r], alignments [B, T/r, N]."""
    b, n, _ = memory.shape
    steps = mel.shape[1] // r
    frames = mel.reshape(b, steps, -1)
    previous = jnp.concatenate([jnp.zeros_like(frames[:, :1]), frames[:, :-1]], axis=1)
    processed_memory = memory @ p["memory_layer"]["kernel"]
    mask = jnp.arange(n)[None] < text_len[:, None]

    def lstm(q, x, h, c):
        i, f, g, o = jnp.split(x @ q["w_ih"] + h @ q["w_hh"] + q["bias"], 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c

    h_att = c_att = jnp.zeros((b, p["attention_rnn"]["w_hh"].shape[0]))
    h_dec = c_dec = jnp.zeros((b, p["decoder_rnn"]["w_hh"].shape[0]))
    w = cum = jnp.zeros((b, n))
    ctx = jnp.zeros((b, memory.shape[-1]))
    k = p["location_conv"]["kernel"].shape[0]
    mels, gates, aligns = [], [], []
    for t in range(steps):
        x = previous[:, t]
        for layer in ("prenet_0", "prenet_1"):
            x = jax.nn.relu(x @ p[layer]["kernel"])
        h_att, c_att = lstm(p["attention_rnn"], jnp.concatenate([x, ctx], -1), h_att, c_att)
        loc = jax.lax.conv_general_dilated(
            jnp.stack([w, cum], -1), p["location_conv"]["kernel"], (1,), [(k // 2, k // 2)],
            dimension_numbers=("NWC", "WIO", "NWC"),
        ) @ p["location_dense"]["kernel"]  # fmt: skip
        query = (h_att @ p["query_layer"]["kernel"])[:, None]
        e = (jnp.tanh(query + loc + processed_memory) @ p["v"]["kernel"])[..., 0]
        w = jax.nn.softmax(jnp.where(mask, e, -jnp.inf), axis=-1)
        ctx = jnp.einsum("bn,bnm->bm", w, memory)
        cum = cum + w
        h_dec, c_dec = lstm(p["decoder_rnn"], jnp.concatenate([h_att, ctx], -1), h_dec, c_dec)
        out = jnp.concatenate([h_dec, ctx], -1)
        mels.append(out @ p["linear_projection"]["kernel"] + p["linear_projection"]["bias"])
        gates.append((out @ p["gate_layer"]["kernel"] + p["gate_layer"]["bias"])[:, 0])
        aligns.append(w)
    return jnp.stack(mels, 1).reshape(b, steps * r, -1), jnp.stack(gates, 1), jnp.stack(aligns, 1)


def test_decoder_matches_a_plain_reference_loop(tiny):
    model, variables = tiny
    text, tl, mel, ml = _batch(4, 2, 7, 12, [7, 4], [12, 12])
    out = model.apply(variables, text, tl, mel, ml)
    memory, _ = model.apply(variables, text, tl, method=model.encode)
    ref_mel, ref_gate, ref_align = reference_decoder(variables["params"]["decoder"], memory, tl, mel, 3)
    np.testing.assert_allclose(np.asarray(out.alignments), np.asarray(ref_align), atol=2e-5)
    np.testing.assert_allclose(np.asarray(out.gate), np.asarray(ref_gate), atol=2e-5)
    np.testing.assert_allclose(np.asarray(out.mel), np.asarray(ref_mel), atol=2e-5)
