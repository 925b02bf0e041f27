"""The teacher-forced decoder recurrence with a hand-written backward pass (a `jax.custom_vjp`).

Why. A training step spends most of its time in the decoder's ~T sequential steps, and on CPU (and for
small batches on any device) each step is bound by streaming the four large recurrent weight matrices
(attention-LSTM hidden, context, decoder-LSTM attention and hidden columns: 64 MB at NVIDIA's sizes).
Autodiff of `lax.scan` accumulates every weight gradient inside the reverse loop, so each backward step
reads the weights once for the input gradients and reads and writes a weight-sized gradient accumulator
for each of them: three weight-sized streams per step. Here the reverse loop computes only the input
gradients (one stream, through pre-transposed weights) and keeps each step's gate-pre-activation
gradients; the weight gradients are then one large matmul each over all T*B rows, after the loop.

The forward pass is `recurrence.decoder_step` under `lax.scan`, the step the plain-autodiff path runs too;
it saves the gate pre-activations and states as residuals. The small pieces of a step (LSTM nonlinearities,
location-sensitive attention) are differentiated with `jax.vjp` inside the reverse loop, from the saved
residuals, so only the big products are written by hand.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from taco_jax.model.recurrence import (
    AttentionParams,
    RecurrentWeights,
    StepInputs,
    attention_cell,
    decoder_cell,
    decoder_step,
    initial_state,
    step_features,
)


class _Residuals(NamedTuple):
    """Per-step values saved by the forward pass, each stacked over steps [T, B, ...]."""

    z_att: jax.Array  # attention-LSTM pre-activations
    z_dec: jax.Array  # decoder-LSTM pre-activations
    att_h: jax.Array  # attention-LSTM hidden state (after dropout)
    att_c: jax.Array
    dec_h: jax.Array  # decoder-LSTM hidden state (after dropout)
    dec_c: jax.Array
    weights: jax.Array  # attention weights [T, B, N]
    weights_cum: jax.Array
    context: jax.Array  # [T, B, M]


def _forward(
    mask_value: float, unroll: int, prenet_proj: jax.Array, attn: AttentionParams, w: RecurrentWeights,
    keep_att: jax.Array, keep_dec: jax.Array, text_mask: jax.Array,
) -> tuple[tuple[jax.Array, jax.Array], _Residuals]:  # fmt: skip
    """The recurrence; returns ((features [T, B, Hd + M], weights [T, B, N]), residuals)."""
    inputs = StepInputs(attn, w, text_mask, mask_value)

    def body(state, xs):
        x, ka, kd = xs
        s, (z_att, z_dec) = decoder_step(state, x, inputs, ka, kd)
        return s, _Residuals(z_att, z_dec, s.att_h, s.att_c, s.dec_h, s.dec_c, s.weights, s.weights_cum, s.context)

    init = initial_state(attn.memory, w.att_hh.shape[0], w.dec_hh.shape[0])
    _, res = jax.lax.scan(body, init, (prenet_proj, keep_att, keep_dec), unroll=unroll)
    return (step_features(res.dec_h, res.context), res.weights), res


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def decode_teacher_forced(
    mask_value: float,
    unroll: int,
    prenet_proj: jax.Array,
    attn: AttentionParams,
    w: RecurrentWeights,
    keep_att: jax.Array,
    keep_dec: jax.Array,
    text_mask: jax.Array,
) -> tuple[jax.Array, jax.Array]:
    """Teacher-forced decoder recurrence from the zero state, with the memory-lean backward pass.

    prenet_proj [T, B, 4Ha]: the prenet output's attention-LSTM term plus that LSTM's bias, per step.
    keep_att [T, B, Ha], keep_dec [T, B, Hd]: dropout keep masks (scaled by 1/(1-p); ones for none).
    text_mask [B, N] bool. Returns (features [T, B, Hd + M] = dec_h || context, attention weights [T, B, N]),
    equal to `lax.scan` over `recurrence.decoder_step`. No gradient flows to the masks.
    """
    return _forward(mask_value, unroll, prenet_proj, attn, w, keep_att, keep_dec, text_mask)[0]


def _fwd(mask_value, unroll, prenet_proj, attn, w, keep_att, keep_dec, text_mask):
    out, res = _forward(mask_value, unroll, prenet_proj, attn, w, keep_att, keep_dec, text_mask)
    return out, (res, attn, w, keep_att, keep_dec, text_mask)


def _shift(x: jax.Array) -> jax.Array:
    """[T, ...] -> the previous step's value at each step (zeros, the initial state, at step 0)."""
    return jnp.concatenate([jnp.zeros_like(x[:1]), x[:-1]], axis=0)


def _matmul_rows(x: jax.Array, g: jax.Array) -> jax.Array:
    """sum over steps and batch of x[t, b]^T g[t, b]: [T, B, I], [T, B, O] -> [I, O] as one product."""
    return x.reshape(-1, x.shape[-1]).T @ g.reshape(-1, g.shape[-1])


def _bwd(mask_value, unroll, saved, cotangents):
    res, attn, w, keep_att, keep_dec, text_mask = saved
    g_features, g_weights_out = cotangents
    hd = w.dec_hh.shape[0]
    g_dec_h_out, g_context_out = g_features[..., :hd], g_features[..., hd:]
    # Transposed once, outside the loop: each reverse step then streams every weight exactly once.
    att_hh_t = w.att_hh.T  # [4Ha, Ha]
    context_t = w.context.T  # [4Ha + 4Hd, M]
    dec_t = jnp.concatenate([w.dec_att, w.dec_hh], axis=0).T  # [4Hd, Ha + Hd]
    ha = w.att_hh.shape[0]
    prev = (_shift(res.att_c), _shift(res.dec_c), _shift(res.weights), _shift(res.weights_cum))

    def body(carry, xs):
        g_att_h, g_att_c, g_dec_h, g_dec_c, g_weights, g_weights_cum, g_z_att_next, g_attn = carry
        (z_att, z_dec, att_c_prev, dec_c_prev, weights_prev, weights_cum_prev, ka, kd, g_dh_out, g_ctx_out,
         g_w_out) = xs  # fmt: skip
        _, dec_vjp = jax.vjp(lambda z, c: decoder_cell(z, c, kd), z_dec, dec_c_prev)
        g_z_dec, g_dec_c_prev = dec_vjp((g_dec_h + g_dh_out, g_dec_c))
        g_context_proj = jnp.concatenate([g_z_att_next, g_z_dec], axis=-1)  # of context @ w.context
        g_from_dec = g_z_dec @ dec_t
        _, att_vjp = jax.vjp(
            lambda a, z, c, wt, wc: attention_cell(z, c, wt, wc, ka, a, text_mask, mask_value),
            attn, z_att, att_c_prev, weights_prev, weights_cum_prev,
        )  # fmt: skip
        g_attn_t, g_z_att, g_att_c_prev, g_weights_prev, g_weights_cum_prev = att_vjp(
            (g_att_h + g_from_dec[:, :ha], g_att_c, g_weights + g_w_out, g_weights_cum,
             g_ctx_out + g_context_proj @ context_t)
        )  # fmt: skip
        g_attn = jax.tree.map(jnp.add, g_attn, g_attn_t)
        carry = (
            g_z_att @ att_hh_t, g_att_c_prev, g_from_dec[:, ha:], g_dec_c_prev, g_weights_prev,
            g_weights_cum_prev, g_z_att, g_attn,
        )  # fmt: skip
        return carry, (g_z_att, g_z_dec, g_context_proj)

    zeros = jnp.zeros_like
    init = (
        zeros(res.att_h[0]), zeros(res.att_c[0]), zeros(res.dec_h[0]), zeros(res.dec_c[0]), zeros(res.weights[0]),
        zeros(res.weights_cum[0]), jnp.zeros(res.z_att.shape[1:], res.z_att.dtype), jax.tree.map(zeros, attn),
    )  # fmt: skip
    xs = (res.z_att, res.z_dec, *prev, keep_att, keep_dec, g_dec_h_out, g_context_out, g_weights_out)
    carry, (g_z_att, g_z_dec, g_context_proj) = jax.lax.scan(body, init, xs, reverse=True, unroll=unroll)
    g_attn = carry[-1]
    g_w = RecurrentWeights(
        att_hh=_matmul_rows(_shift(res.att_h), g_z_att),
        context=_matmul_rows(res.context, g_context_proj),
        dec_att=_matmul_rows(res.att_h, g_z_dec),
        dec_hh=_matmul_rows(_shift(res.dec_h), g_z_dec),
        dec_bias=jnp.sum(g_z_dec, axis=(0, 1)),
    )
    return g_z_att, g_attn, g_w, None, None, None


decode_teacher_forced.defvjp(_fwd, _bwd)
