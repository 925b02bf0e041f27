"""The teacher-forced decoder recurrence with a hand-written backward pass (a `jax.custom_vjp`).

Why. A training step spends most of its time in the decoder's ~T sequential steps, and on CPU (and for
small batches on any device) each step is bound by streaming the four large recurrent weight matrices
(attention-LSTM hidden, context, decoder-LSTM attention and hidden columns: 64 MB at NVIDIA's sizes).
Autodiff of `lax.scan` accumulates every weight gradient inside the reverse loop, so each backward step
reads the weights once for the input gradients and reads and writes a weight-sized gradient accumulator
for each of them: three weight-sized streams per step. Here the reverse loop computes only the input
gradients (one stream, through pre-transposed weights) and keeps each step's gate-pre-activation
gradients; the weight gradients are then one large matmul each over all T*B rows, after the loop.

The forward pass is the same computation as `decoder.decoder_step` under `lax.scan` (same functions, same
order of operations); it saves the gate pre-activations and states as residuals. The small pieces of a
step (LSTM nonlinearities, location-sensitive attention) are differentiated with `jax.vjp` inside the
reverse loop, from the saved residuals, so only the big products are written by hand.
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp

from taco_jax.model.decoder import StepInputs, attention_cell, decoder_cell


class RecurrentWeights(NamedTuple):
    """The large matrices of the recurrence (gate blocks i, f, g, o in each 4H)."""

    att_hh: jax.Array  # [Ha, 4Ha] attention LSTM, hidden columns
    context: jax.Array  # [M, 4Ha + 4Hd] both LSTMs' context columns
    dec_att: jax.Array  # [Ha, 4Hd] decoder LSTM, attention-hidden columns
    dec_hh: jax.Array  # [Hd, 4Hd] decoder LSTM, hidden columns
    dec_bias: jax.Array  # [4Hd]


class AttentionParams(NamedTuple):
    """Everything attention reads that gets a gradient (small next to RecurrentWeights)."""

    query: jax.Array  # [Ha, A]
    v: jax.Array  # [A, 1]
    location_conv: jax.Array  # [K, 2, F]
    location_dense: jax.Array  # [F, A]
    memory: jax.Array  # [B, N, M]
    processed_memory: jax.Array  # [B, N, A]


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


def _step_inputs(attn: AttentionParams, text_mask: jax.Array, mask_value: float) -> StepInputs:
    return StepInputs(
        attn.memory, attn.processed_memory, text_mask, attn.location_conv, attn.location_dense, None, None, mask_value
    )


def _attention(attn: AttentionParams, text_mask, mask_value, z_att, att_c, weights, weights_cum, keep_att):
    return attention_cell(
        z_att, att_c, weights, weights_cum, keep_att, attn.query, attn.v, _step_inputs(attn, text_mask, mask_value)
    )


def _forward(
    mask_value, unroll, prenet_proj, attn: AttentionParams, w: RecurrentWeights, keep_att, keep_dec, text_mask
):
    """The recurrence; returns ((features [T, B, Hd + M], weights [T, B, N]), residuals)."""
    _, b, four_ha = prenet_proj.shape
    n = attn.memory.shape[1]
    ha, hd = w.att_hh.shape[0], w.dec_hh.shape[0]
    dtype = prenet_proj.dtype
    zeros = lambda *shape: jnp.zeros(shape, dtype)  # noqa: E731
    init = (zeros(b, ha), zeros(b, ha), zeros(b, hd), zeros(b, hd), zeros(b, n), zeros(b, n), zeros(b, four_ha))

    def body(carry, xs):
        att_h, att_c, dec_h, dec_c, weights, weights_cum, context_att = carry
        x, ka, kd = xs
        z_att = x + context_att + att_h @ w.att_hh
        att_h, att_c, weights, weights_cum, context = _attention(
            attn, text_mask, mask_value, z_att, att_c, weights, weights_cum, ka
        )
        context_att, context_dec = jnp.split(context @ w.context, [four_ha], axis=-1)
        z_dec = att_h @ w.dec_att + context_dec + dec_h @ w.dec_hh + w.dec_bias
        dec_h, dec_c = decoder_cell(z_dec, dec_c, kd)
        carry = (att_h, att_c, dec_h, dec_c, weights, weights_cum, context_att)
        return carry, _Residuals(z_att, z_dec, att_h, att_c, dec_h, dec_c, weights, weights_cum, context)

    _, res = jax.lax.scan(body, init, (prenet_proj, keep_att, keep_dec), unroll=unroll)
    return (jnp.concatenate([res.dec_h, res.context], -1), res.weights), res


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
    equal to `lax.scan` over `decoder.decoder_step`. No gradient flows to the masks.
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
            lambda a, z, c, wt, wc: _attention(a, text_mask, mask_value, z, c, wt, wc, ka),
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
