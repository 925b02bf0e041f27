"""Autoregressive decoder: prenet, location-sensitive attention, attention and decoder LSTMs, projections.

The modules here own the parameters (names and layouts match the PyTorch checkpoints); the step itself is
`recurrence.decoder_step`, a pure function over their arrays, so that it runs under `lax.scan` (teacher
forcing) and `lax.while_loop` (free-running inference) without lifted Flax transforms. Training can use
`decoder_vjp`'s hand-written backward pass of the same scan instead. Everything that does not depend on the
recurrent state is hoisted out of the loop: the prenet of the teacher-forced frames, the memory projection,
and the mel/gate projections (applied to the stacked step features after the scan).
"""

from __future__ import annotations

from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from taco_jax.model.decoder_vjp import decode_teacher_forced
from taco_jax.model.layers import LSTMParams, torch_default_bias, xavier_uniform
from taco_jax.model.recurrence import (
    AttentionParams,
    DecoderState,
    RecurrentWeights,
    StepInputs,
    decoder_step,
    initial_state,
    step_features,
)


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
    """x [..., in] @ kernel [in, out] (+ bias) -> [..., out], for a DenseParams dict."""
    y = x @ p["kernel"]
    return y + p["bias"] if "bias" in p else y


def _dropout_keep(key: jax.Array, rate: float, shape: tuple[int, ...], dtype) -> jax.Array:
    """Inverted-dropout keep mask: 0 or 1/(1 - rate)."""
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
        """The recurrence's constants from the parameters: the LSTMs' input weights split by what they read."""
        att, dec = p["attention_rnn"], p["decoder_rnn"]
        w_context = jnp.concatenate([att["w_ih"][self.prenet_dim :], dec["w_ih"][self.attention_rnn_dim :]], axis=1)
        processed_memory = dense(p["memory_layer"], memory)
        w_dec_att = dec["w_ih"][: self.attention_rnn_dim]
        attention = AttentionParams(
            p["query_layer"]["kernel"], p["v"]["kernel"], p["location_conv"], p["location_dense"]["kernel"], memory,
            processed_memory,
        )  # fmt: skip
        recurrent = RecurrentWeights(att["w_hh"], w_context, w_dec_att, dec["w_hh"], dec["bias"])
        return StepInputs(attention, recurrent, text_mask, self.mask_value)

    def _prenet_proj(self, p, prenet_out: jax.Array) -> jax.Array:
        att = p["attention_rnn"]
        return prenet_out @ att["w_ih"][: self.prenet_dim] + att["bias"]

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
            features, weights = decode_teacher_forced(
                self.mask_value, self.scan_unroll, prenet_proj, inputs.attention, inputs.recurrent, keep_att,
                keep_dec, text_mask,
            )  # fmt: skip
        else:

            def body(state, xs):
                x, ka, kd = xs
                state, _ = decoder_step(state, x, inputs, ka, kd)
                return state, (step_features(state.dec_h, state.context), state.weights)

            if train and self.remat:
                body = jax.checkpoint(body)
            init = initial_state(memory, self.attention_rnn_dim, self.decoder_rnn_dim)
            _, (features, weights) = jax.lax.scan(
                body, init, (prenet_proj, keep_att, keep_dec), unroll=self.scan_unroll
            )
        head_key = self.make_rng("dropout") if train and self.mmi_dim else None
        mel_out, gate, mmi_features = self._project(p, jnp.swapaxes(features, 0, 1), head_key)
        return mel_out.reshape(b, t, c), gate, jnp.swapaxes(weights, 0, 1), mmi_features

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
            state, _ = decoder_step(s.state, x, inputs)
            mel_t, gate_t, _ = self._project(p, step_features(state.dec_h, state.context))
            stop = jax.nn.sigmoid(gate_t) > gate_threshold
            lengths = jnp.where(s.done, s.lengths, s.step + 1)
            return Loop(
                s.step + 1, state, mel_t, s.done | stop, lengths,
                s.mels.at[s.step].set(mel_t), s.gates.at[s.step].set(gate_t), s.weights.at[s.step].set(state.weights),
            )  # fmt: skip

        state = initial_state(memory, self.attention_rnn_dim, self.decoder_rnn_dim)
        init = Loop(
            jnp.int32(0), state, jnp.zeros((b, frame), dtype), jnp.zeros((b,), bool),
            jnp.zeros((b,), jnp.int32), jnp.zeros((max_steps, b, frame), dtype), jnp.zeros((max_steps, b), dtype),
            jnp.zeros((max_steps, b, n), dtype),
        )  # fmt: skip
        out = jax.lax.while_loop(cond, body, init)
        mels = jnp.swapaxes(out.mels, 0, 1).reshape(b, max_steps * self.r, self.n_mels)
        return mels, out.gates.T, jnp.swapaxes(out.weights, 0, 1), out.lengths, out.done
