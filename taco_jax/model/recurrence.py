"""The decoder's recurrence as pure functions over explicit arrays: one step of Tacotron 2's decoder.

A step runs the attention LSTM, location-sensitive attention and the decoder LSTM. Three loops run it: the
teacher-forced `lax.scan` and the free-running `lax.while_loop` of `decoder.Decoder`, and the forward pass of
the hand-written backward pass in `decoder_vjp`, which also differentiates pieces of it (`attention_cell`,
`decoder_cell`) with `jax.vjp`. Those callers need plain functions of arrays, so nothing here uses Flax:
`decoder` owns the parameters and passes their arrays in, and `decoder_vjp` needs nothing from `decoder`.

Sizes: B batch, N text tokens, M memory width, Ha attention-LSTM units, Hd decoder-LSTM units,
A attention dimension, K location-conv taps, F location filters. Gate blocks are i, f, g, o in each 4H
(PyTorch's fused layout, so checkpoints map one to one).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class DecoderState(NamedTuple):
    """The recurrent state carried from one decoder step to the next."""

    att_h: jax.Array  # [B, Ha] attention-LSTM hidden state (after dropout)
    att_c: jax.Array  # [B, Ha]
    dec_h: jax.Array  # [B, Hd] decoder-LSTM hidden state (after dropout)
    dec_c: jax.Array  # [B, Hd]
    weights: jax.Array  # [B, N] attention weights of the previous step
    weights_cum: jax.Array  # [B, N] cumulative attention weights
    context: jax.Array  # [B, M] attention context
    context_proj: jax.Array  # [B, 4Ha]: context's term in the next attention-LSTM input


class AttentionParams(NamedTuple):
    """Everything attention reads that gets a gradient (small next to RecurrentWeights)."""

    query: jax.Array  # [Ha, A]
    v: jax.Array  # [A, 1]
    location_conv: jax.Array  # [K, 2, F]
    location_dense: jax.Array  # [F, A]
    memory: jax.Array  # [B, N, M]
    processed_memory: jax.Array  # [B, N, A] memory @ memory-layer kernel, computed once before the loop


class RecurrentWeights(NamedTuple):
    """The large matrices of the recurrence."""

    att_hh: jax.Array  # [Ha, 4Ha] attention LSTM, hidden columns
    context: jax.Array  # [M, 4Ha + 4Hd] both LSTMs' context columns, fused into one product per step
    dec_att: jax.Array  # [Ha, 4Hd] decoder LSTM, attention-hidden columns
    dec_hh: jax.Array  # [Hd, 4Hd] decoder LSTM, hidden columns
    dec_bias: jax.Array  # [4Hd]


class StepInputs(NamedTuple):
    """Per-utterance constants of the recurrence, computed once before the loop."""

    attention: AttentionParams
    recurrent: RecurrentWeights
    text_mask: jax.Array  # [B, N] bool, True on real tokens
    mask_value: float  # attention energy of padded tokens


class StepGates(NamedTuple):
    """A step's LSTM pre-activations: the residuals the hand-written backward pass differentiates from."""

    z_att: jax.Array  # [B, 4Ha]
    z_dec: jax.Array  # [B, 4Hd]


def lstm_update(gates: jax.Array, c: jax.Array) -> tuple[jax.Array, jax.Array]:
    """PyTorch-semantics LSTM cell update from pre-activations [B, 4H] (gate blocks i, f, g, o) -> (h', c')."""
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c_new), c_new


def initial_state(memory: jax.Array, attention_rnn_dim: int, decoder_rnn_dim: int) -> DecoderState:
    """The all-zero state before the first step, in memory's dtype; memory [B, N, M]."""
    b, n, m = memory.shape
    z = lambda *shape: jnp.zeros(shape, memory.dtype)  # noqa: E731
    return DecoderState(
        z(b, attention_rnn_dim), z(b, attention_rnn_dim), z(b, decoder_rnn_dim), z(b, decoder_rnn_dim), z(b, n),
        z(b, n), z(b, m), z(b, 4 * attention_rnn_dim),
    )  # fmt: skip


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


def attention_cell(
    z_att: jax.Array, att_c: jax.Array, weights: jax.Array, weights_cum: jax.Array, keep_att: jax.Array | None,
    attn: AttentionParams, text_mask: jax.Array, mask_value: float,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array, jax.Array]:  # fmt: skip
    """Attention-LSTM update from its pre-activations z_att [B, 4Ha], then location-sensitive attention.

    weights, weights_cum [B, N]: the previous step's attention weights and their running sum.
    keep_att [B, Ha]: dropout keep mask on the attention-LSTM output (scaled by 1/(1-p)), or None.
    Returns (att_h [B, Ha], att_c [B, Ha], weights [B, N], weights_cum [B, N], context [B, M]).
    """
    att_h, att_c = lstm_update(z_att, att_c)
    if keep_att is not None:
        att_h = att_h * keep_att
    location = location_features(weights, weights_cum, attn.location_conv) @ attn.location_dense
    query = att_h @ attn.query
    energies = jnp.tanh(query[:, None, :] + location + attn.processed_memory) @ attn.v
    energies = jnp.where(text_mask, energies[..., 0], mask_value)
    # Softmax in f32 whatever the compute dtype: in half precision a long text's small weights round to zero.
    weights = jax.nn.softmax(energies.astype(jnp.float32), axis=-1).astype(energies.dtype)
    context = jnp.einsum("bn,bnm->bm", weights, attn.memory)
    return att_h, att_c, weights, weights_cum + weights, context


def decoder_cell(z_dec: jax.Array, dec_c: jax.Array, keep_dec: jax.Array | None) -> tuple[jax.Array, jax.Array]:
    """Decoder-LSTM update from its pre-activations z_dec [B, 4Hd] -> (dec_h [B, Hd], dec_c [B, Hd]).

    keep_dec [B, Hd]: dropout keep mask on the output (scaled by 1/(1-p)), or None.
    """
    dec_h, dec_c = lstm_update(z_dec, dec_c)
    if keep_dec is not None:
        dec_h = dec_h * keep_dec
    return dec_h, dec_c


def decoder_step(
    state: DecoderState, prenet_proj: jax.Array, inputs: StepInputs, keep_att: jax.Array | None = None,
    keep_dec: jax.Array | None = None,
) -> tuple[DecoderState, StepGates]:  # fmt: skip
    """One decoder step -> (new state, the step's LSTM pre-activations).

    prenet_proj [B, 4Ha] is the prenet output's term of the attention-LSTM input plus that LSTM's bias
    (hoisted out of the loop). The context feeds both LSTMs through one fused product, whose attention-LSTM
    part waits in the state for the next step. keep_att [B, Ha], keep_dec [B, Hd]: dropout keep masks
    (scaled by 1/(1-p)), or None.
    """
    w = inputs.recurrent
    z_att = prenet_proj + state.context_proj + state.att_h @ w.att_hh
    att_h, att_c, weights, weights_cum, context = attention_cell(
        z_att, state.att_c, state.weights, state.weights_cum, keep_att, inputs.attention, inputs.text_mask,
        inputs.mask_value,
    )  # fmt: skip
    context_att, context_dec = jnp.split(context @ w.context, [state.context_proj.shape[-1]], axis=-1)
    z_dec = att_h @ w.dec_att + context_dec + state.dec_h @ w.dec_hh + w.dec_bias
    dec_h, dec_c = decoder_cell(z_dec, state.dec_c, keep_dec)
    new_state = DecoderState(att_h, att_c, dec_h, dec_c, weights, weights_cum, context, context_att)
    return new_state, StepGates(z_att, z_dec)


def step_features(dec_h: jax.Array, context: jax.Array) -> jax.Array:
    """The features the mel and gate projections read: dec_h [..., Hd] || context [..., M] -> [..., Hd + M]."""
    return jnp.concatenate([dec_h, context], -1)
