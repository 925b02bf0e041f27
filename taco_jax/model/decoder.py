"""Autoregressive decoder: prenet, location-sensitive attention, attention and decoder LSTMs, projections.

The recurrence is written as a pure step function over explicit parameter arrays so that it runs under
`lax.scan` (teacher forcing) and `lax.while_loop` (free-running inference) without lifted Flax transforms.
Everything that does not depend on the recurrent state is hoisted out of the loop: the prenet of the
teacher-forced frames, the memory projection, and the mel/gate projections (applied to the stacked step
features after the scan).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.model.layers import LSTMParams, lstm_update, torch_default_bias, xavier_uniform


class DenseParams(nn.Module):
    """A dense layer's parameters (kernel [in, out], optional bias [out]) returned as a dict."""

    features_in: int
    features_out: int
    use_bias: bool = True
    gain: str = "linear"

    @nn.compact
    def __call__(self) -> dict[str, jax.Array]:
        p = {"kernel": self.param("kernel", xavier_uniform(self.gain), (self.features_in, self.features_out))}
        if self.use_bias:
            p["bias"] = self.param("bias", torch_default_bias(self.features_in), (self.features_out,))
        return p


class ConvParams(nn.Module):
    """A 1-D conv kernel [K, in, out] without bias (the attention location conv)."""

    kernel_size: int
    features_in: int
    features_out: int
    gain: str = "linear"

    @nn.compact
    def __call__(self) -> jax.Array:
        shape = (self.kernel_size, self.features_in, self.features_out)
        return self.param("kernel", xavier_uniform(self.gain), shape)


def dense(p: dict[str, jax.Array], x: jax.Array) -> jax.Array:
    y = x @ p["kernel"]
    return y + p["bias"] if "bias" in p else y


class DecoderState(NamedTuple):
    att_h: jax.Array  # [B, attention_rnn_dim]
    att_c: jax.Array  # [B, attention_rnn_dim]
    dec_h: jax.Array  # [B, decoder_rnn_dim]
    dec_c: jax.Array  # [B, decoder_rnn_dim]
    weights: jax.Array  # [B, N] attention weights of the previous step
    weights_cum: jax.Array  # [B, N] cumulative attention weights
    context: jax.Array  # [B, M] attention context
    context_proj: jax.Array  # [B, 4 * attention_rnn_dim]: context's term in the next attention-LSTM input


class StepInputs(NamedTuple):
    """Per-utterance constants of the recurrence, computed once before the loop."""

    memory: jax.Array  # [B, N, M]
    processed_memory: jax.Array  # [B, N, attention_dim]
    text_mask: jax.Array  # [B, N] bool
    location_conv: jax.Array  # [K, 2, F] location conv kernel
    location_dense: jax.Array  # [F, attention_dim]
    w_context: jax.Array  # [M, 4 * (attention_rnn_dim + decoder_rnn_dim)]: both LSTMs' context columns
    w_dec_att: jax.Array  # [attention_rnn_dim, 4 * decoder_rnn_dim]: decoder LSTM's attention-h columns
    mask_value: float


def attention_cell(
    z_att: jax.Array, att_c: jax.Array, weights: jax.Array, weights_cum: jax.Array, keep_att: jax.Array | None,
    query_kernel: jax.Array, v_kernel: jax.Array, inputs: StepInputs,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:  # fmt: skip
    """Attention-LSTM update from its pre-activations z_att [B, 4 * attention_rnn_dim], then attention.

    Returns (att_h, att_c, weights [B, N], weights_cum [B, N], context [B, M]). Uses `inputs`' memory,
    processed_memory, text_mask, location kernels and mask_value only.
    """
    att_h, att_c = lstm_update(z_att, att_c)
    if keep_att is not None:
        att_h = att_h * keep_att
    location = location_features(weights, weights_cum, inputs.location_conv) @ inputs.location_dense
    query = att_h @ query_kernel
    energies = jnp.tanh(query[:, None, :] + location + inputs.processed_memory) @ v_kernel
    energies = jnp.where(inputs.text_mask, energies[..., 0], inputs.mask_value)
    weights = jax.nn.softmax(energies.astype(jnp.float32), axis=-1).astype(energies.dtype)
    context = jnp.einsum("bn,bnm->bm", weights, inputs.memory)
    return att_h, att_c, weights, weights_cum + weights, context


def decoder_cell(z_dec: jax.Array, dec_c: jax.Array, keep_dec: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Decoder-LSTM update from its pre-activations z_dec [B, 4 * decoder_rnn_dim] -> (dec_h, dec_c)."""
    dec_h, dec_c = lstm_update(z_dec, dec_c)
    if keep_dec is not None:
        dec_h = dec_h * keep_dec
    return dec_h, dec_c


def decoder_step(
    p: dict, state: DecoderState, prenet_proj: jax.Array, inputs: StepInputs, keep_att=None, keep_dec=None
) -> tuple[DecoderState, jax.Array]:
    """One decoder step; keep_*: dropout keep masks scaled by 1/(1-p), or None.

    prenet_proj [B, 4 * attention_rnn_dim] is the prenet output's term of the attention-LSTM input plus its
    bias (hoisted out of the loop). The context feeds both LSTMs through one fused product per step.
    Returns the new state and the projection features [B, decoder_rnn_dim + M] (h_dec || context).
    """
    att, dec = p["attention_rnn"], p["decoder_rnn"]
    z_att = prenet_proj + state.context_proj + state.att_h @ att["w_hh"]
    att_h, att_c, weights, weights_cum, context = attention_cell(
        z_att, state.att_c, state.weights, state.weights_cum, keep_att, p["query_layer"]["kernel"],
        p["v"]["kernel"], inputs,
    )  # fmt: skip
    context_att, context_dec = jnp.split(context @ inputs.w_context, [state.context_proj.shape[-1]], axis=-1)
    dec_gates = att_h @ inputs.w_dec_att + context_dec + state.dec_h @ dec["w_hh"] + dec["bias"]
    dec_h, dec_c = decoder_cell(dec_gates, state.dec_c, keep_dec)
    new_state = DecoderState(att_h, att_c, dec_h, dec_c, weights, weights_cum, context, context_att)
    return new_state, jnp.concatenate([dec_h, context], -1)


def location_features(weights: jax.Array, weights_cum: jax.Array, kernel: jax.Array) -> jax.Array:
    """'Same' 1-D conv of [previous, cumulative] attention weights [B, N] with kernel [K, 2, F] -> [B, N, F].

    Written as K shifted slices and one matmul (im2col): on CPU this is several times faster than XLA's
    convolution for these tiny 2-channel inputs, forward and backward. (Fusing the following dense layer
    into the kernel is slower: the backward pass then runs through a K*2 x attention_dim product.)
    """
    k = kernel.shape[0]
    pad = (k - 1) // 2
    n = weights.shape[-1]
    stacked = jnp.pad(jnp.stack([weights, weights_cum], axis=-1), ((0, 0), (pad, k - 1 - pad), (0, 0)))
    patches = jnp.concatenate([stacked[:, i : i + n] for i in range(k)], axis=-1)  # [B, N, K*2]
    return patches @ kernel.reshape(k * 2, -1)


def _dropout_keep(key: jax.Array, rate: float, shape: tuple[int, ...], dtype) -> jax.Array:
    keep = jax.random.bernoulli(key, 1.0 - rate, shape)
    return keep.astype(dtype) / (1.0 - rate)


class Decoder(nn.Module):
    """Tacotron 2 decoder. Memory [B, N, M] -> mel frames, gate logits and alignments."""

    n_mels: int = 80
    r: int = 1  # frames per decoder step
    prenet_dim: int = 256
    prenet_dropout: float = 0.5
    attention_rnn_dim: int = 1024
    attention_dim: int = 128
    location_filters: int = 32
    location_kernel: int = 31
    attention_dropout: float = 0.1
    decoder_rnn_dim: int = 1024
    decoder_dropout: float = 0.1
    memory_dim: int = 512
    mask_value: float = -1e4
    custom_vjp: bool = True  # training uses decoder_vjp's hand-written backward pass (same values)
    scan_unroll: int = 1  # decoder steps per iteration of the training scans (lax.scan's unroll)
    remat: bool = False  # plain-autodiff training scan: recompute each step's internals in the backward pass
    mmi_dim: int = 0  # > 0: the MMI head (projection to mmi_dim, mel layer, gate from the projection)
    mmi_dropout: float = 0.5

    def setup(self):
        frame = self.n_mels * self.r
        m = self.memory_dim
        self.prenet_0 = DenseParams(frame, self.prenet_dim, use_bias=False)
        self.prenet_1 = DenseParams(self.prenet_dim, self.prenet_dim, use_bias=False)
        self.attention_rnn = LSTMParams(self.prenet_dim + m, self.attention_rnn_dim)
        self.query_layer = DenseParams(self.attention_rnn_dim, self.attention_dim, use_bias=False, gain="tanh")
        self.memory_layer = DenseParams(m, self.attention_dim, use_bias=False, gain="tanh")
        self.v = DenseParams(self.attention_dim, 1, use_bias=False)
        self.location_conv = ConvParams(self.location_kernel, 2, self.location_filters)
        self.location_dense = DenseParams(self.location_filters, self.attention_dim, use_bias=False, gain="tanh")
        self.decoder_rnn = LSTMParams(self.attention_rnn_dim + m, self.decoder_rnn_dim)
        features = self.decoder_rnn_dim + m
        if self.mmi_dim:
            self.linear_projection = DenseParams(features, self.mmi_dim, gain="relu")
            self.mel_layer_0 = DenseParams(self.mmi_dim, self.mmi_dim, gain="relu")
            self.mel_layer_1 = DenseParams(self.mmi_dim, frame)
            self.gate_layer = DenseParams(self.mmi_dim, 1, gain="sigmoid")
        else:
            self.linear_projection = DenseParams(features, frame)
            self.gate_layer = DenseParams(features, 1, gain="sigmoid")

    def _params(self) -> dict:
        head = {"mel_layer": (self.mel_layer_0(), self.mel_layer_1())} if self.mmi_dim else {}
        return head | {
            "prenet": (self.prenet_0(), self.prenet_1()),
            "attention_rnn": self.attention_rnn(),
            "query_layer": self.query_layer(),
            "memory_layer": self.memory_layer(),
            "v": self.v(),
            "location_conv": self.location_conv(),
            "location_dense": self.location_dense(),
            "decoder_rnn": self.decoder_rnn(),
            "linear_projection": self.linear_projection(),
            "gate_layer": self.gate_layer(),
        }

    def _prenet(self, p, x: jax.Array, dropout_key: jax.Array | None) -> jax.Array:
        keys = jax.random.split(dropout_key) if dropout_key is not None else (None, None)
        for layer, key in zip(p["prenet"], keys, strict=True):
            x = jax.nn.relu(dense(layer, x))
            if key is not None:
                x = x * _dropout_keep(key, self.prenet_dropout, x.shape, x.dtype)
        return x

    def _step_inputs(self, p, memory, text_mask) -> StepInputs:
        att, dec = p["attention_rnn"], p["decoder_rnn"]
        w_context = jnp.concatenate([att["w_ih"][self.prenet_dim :], dec["w_ih"][self.attention_rnn_dim :]], axis=1)
        return StepInputs(
            memory, dense(p["memory_layer"], memory), text_mask, p["location_conv"], p["location_dense"]["kernel"],
            w_context, dec["w_ih"][: self.attention_rnn_dim], self.mask_value,
        )  # fmt: skip

    def _prenet_proj(self, p, prenet_out: jax.Array) -> jax.Array:
        att = p["attention_rnn"]
        return prenet_out @ att["w_ih"][: self.prenet_dim] + att["bias"]

    def _initial_state(self, memory) -> DecoderState:
        b, n, m = memory.shape
        z = lambda d: jnp.zeros((b, d), memory.dtype)  # noqa: E731
        return DecoderState(
            z(self.attention_rnn_dim), z(self.attention_rnn_dim), z(self.decoder_rnn_dim), z(self.decoder_rnn_dim),
            jnp.zeros((b, n), memory.dtype), jnp.zeros((b, n), memory.dtype), z(m), z(4 * self.attention_rnn_dim),
        )  # fmt: skip

    def _project(
        self, p, features: jax.Array, dropout_key: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array, jax.Array | None]:
        """features [..., decoder_rnn_dim + M] -> (frames [..., n_mels * r], gate logits [...], MMI features).

        The MMI features [..., mmi_dim] (None without the MMI head) are the projection the gate reads.
        """
        if not self.mmi_dim:
            return dense(p["linear_projection"], features), dense(p["gate_layer"], features)[..., 0], None
        keys = jax.random.split(dropout_key) if dropout_key is not None else (None, None)

        def drop(x, key):
            return x if key is None else x * _dropout_keep(key, self.mmi_dropout, x.shape, x.dtype)

        d = drop(jax.nn.relu(dense(p["linear_projection"], features)), keys[0])
        hidden_0, out = p["mel_layer"]
        frames = dense(out, drop(jax.nn.relu(dense(hidden_0, d)), keys[1]))
        return frames, dense(p["gate_layer"], d)[..., 0], d

    def __call__(
        self, memory: jax.Array, text_mask: jax.Array, mel: jax.Array, train: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array | None]:
        """Teacher-forced decoding.

        memory [B, N, M], text_mask [B, N] bool, mel [B, T, n_mels] with T a multiple of r.
        Returns mel [B, T, n_mels], gate logits [B, T/r], alignments [B, T/r, N] and the MMI features
        [B, T/r, mmi_dim] (None without the MMI head).
        """
        p = self._params()
        b, t, c = mel.shape
        steps = t // self.r
        frames = mel.reshape(b, steps, c * self.r)
        previous = jnp.concatenate([jnp.zeros_like(frames[:, :1]), frames[:, :-1]], axis=1)  # go frame first
        prenet_key = self.make_rng("dropout") if train else None
        prenet_out = self._prenet(p, previous, prenet_key)
        prenet_proj = jnp.swapaxes(self._prenet_proj(p, prenet_out), 0, 1)  # [steps, B, 4 * attention_rnn_dim]
        if train:
            k_att, k_dec = jax.random.split(self.make_rng("dropout"))
            keep_att = _dropout_keep(k_att, self.attention_dropout, (steps, b, self.attention_rnn_dim), mel.dtype)
            keep_dec = _dropout_keep(k_dec, self.decoder_dropout, (steps, b, self.decoder_rnn_dim), mel.dtype)
        else:
            keep_att = keep_dec = None
        inputs = self._step_inputs(p, memory, text_mask)
        if train and self.custom_vjp:
            features, weights = self._decode_custom_vjp(p, inputs, prenet_proj, keep_att, keep_dec)
        else:

            def body(state, xs):
                x, ka, kd = xs
                state, features = decoder_step(p, state, x, inputs, ka, kd)
                return state, (features, state.weights)

            if train and self.remat:
                body = jax.checkpoint(body)
            init = self._initial_state(memory)
            _, (features, weights) = jax.lax.scan(
                body, init, (prenet_proj, keep_att, keep_dec), unroll=self.scan_unroll
            )
        head_key = self.make_rng("dropout") if train and self.mmi_dim else None
        mel_out, gate, mmi_features = self._project(p, jnp.swapaxes(features, 0, 1), head_key)
        return mel_out.reshape(b, t, c), gate, jnp.swapaxes(weights, 0, 1), mmi_features

    def _decode_custom_vjp(self, p, inputs: StepInputs, prenet_proj, keep_att, keep_dec):
        from taco_jax.model.decoder_vjp import AttentionParams, RecurrentWeights, decode_teacher_forced

        attn = AttentionParams(
            p["query_layer"]["kernel"], p["v"]["kernel"], inputs.location_conv, inputs.location_dense,
            inputs.memory, inputs.processed_memory,
        )  # fmt: skip
        dec = p["decoder_rnn"]
        w = RecurrentWeights(p["attention_rnn"]["w_hh"], inputs.w_context, inputs.w_dec_att, dec["w_hh"], dec["bias"])
        return decode_teacher_forced(
            self.mask_value, self.scan_unroll, prenet_proj, attn, w, keep_att, keep_dec, inputs.text_mask
        )

    def infer(
        self, memory: jax.Array, text_mask: jax.Array, max_steps: int, gate_threshold: float, prenet_dropout: bool
    ) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:
        """Batched free-running decoding; each item stops when sigmoid(gate) > gate_threshold.

        Returns mel [B, max_steps*r, n_mels], gate logits [B, max_steps], alignments [B, max_steps, N],
        lengths [B] in decoder steps, stopped [B] bool (False: the step limit ended it).
        """
        p = self._params()
        b, n, _ = memory.shape
        frame = self.n_mels * self.r
        inputs = self._step_inputs(p, memory, text_mask)
        key = self.make_rng("dropout") if prenet_dropout else None
        dtype = memory.dtype

        class Loop(NamedTuple):
            step: jax.Array
            state: DecoderState
            frame: jax.Array
            done: jax.Array
            lengths: jax.Array
            mels: jax.Array
            gates: jax.Array
            weights: jax.Array

        def cond(s: Loop):
            return (s.step < max_steps) & ~jnp.all(s.done)

        def body(s: Loop):
            step_key = jax.random.fold_in(key, s.step) if key is not None else None
            x = self._prenet_proj(p, self._prenet(p, s.frame, step_key))
            state, features = decoder_step(p, s.state, x, inputs)
            mel_t, gate_t, _ = self._project(p, features)
            stop = jax.nn.sigmoid(gate_t) > gate_threshold
            lengths = jnp.where(s.done, s.lengths, s.step + 1)
            return Loop(
                s.step + 1, state, mel_t, s.done | stop, lengths,
                s.mels.at[s.step].set(mel_t), s.gates.at[s.step].set(gate_t), s.weights.at[s.step].set(state.weights),
            )  # fmt: skip

        init = Loop(
            jnp.int32(0), self._initial_state(memory), jnp.zeros((b, frame), dtype), jnp.zeros((b,), bool),
            jnp.zeros((b,), jnp.int32), jnp.zeros((max_steps, b, frame), dtype), jnp.zeros((max_steps, b), dtype),
            jnp.zeros((max_steps, b, n), dtype),
        )  # fmt: skip
        out = jax.lax.while_loop(cond, body, init)
        mels = jnp.swapaxes(out.mels, 0, 1).reshape(b, max_steps * self.r, self.n_mels)
        return mels, out.gates.T, jnp.swapaxes(out.weights, 0, 1), out.lengths, out.done
