"""The decoder's hand-written backward pass gives the gradients of plain autodiff through `lax.scan`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import random_batch, tiny_model_config

from taco_jax.config import ConfigError, load_config
from taco_jax.model import build_model
from taco_jax.train.state import init_variables

N_SYMBOLS = 40
TOL = 1e-5  # max abs difference relative to the gradient leaf's max abs value


def model_pair(**changes):
    """The same tiny model with the custom VJP (and `changes`) and as the straightforward implementation
    (plain autodiff of lax.scan, no unrolling), and one set of variables for both."""
    on = build_model(tiny_model_config(decoder_custom_vjp=True, **changes), N_SYMBOLS)
    plain = {**changes, "decoder_scan_unroll": 1}
    off = build_model(tiny_model_config(decoder_custom_vjp=False, **plain), N_SYMBOLS)
    variables = init_variables(on, jax.random.PRNGKey(0), 80, on.cfg.n_frames_per_step)
    return on, off, variables


def make_objective(model, batch):
    """A scalar that weighs every output (mel, mel_post, gate, alignments) with fixed random coefficients,
    so that every output's cotangent is non-trivial; train mode, so dropout masks are in play."""
    keys = jax.random.split(jax.random.PRNGKey(7), 4)

    def objective(params, batch_stats):
        out, _ = model.apply(
            {"params": params, "batch_stats": batch_stats}, batch.text, batch.text_len, batch.mel, batch.mel_len,
            train=True, rngs={"dropout": jax.random.PRNGKey(3)}, mutable=["batch_stats"],
        )  # fmt: skip
        total = 0.0
        outputs = (out.mel, out.mel_post, jnp.where(out.gate > 100, 0.0, out.gate), out.alignments)
        for key, x in zip(keys, outputs, strict=True):
            total = total + jnp.sum(jax.random.normal(key, x.shape) * x)
        return total, out

    return objective


def assert_same_gradients(model, plain, variables, batch):
    """`model` and the straightforward `plain` give the same forward values and gradients (TOL); returns the
    objective's jaxprs of both (to check which program was differentiated)."""
    args = (variables["params"], variables["batch_stats"])
    (value_on, out_on), grads_on = jax.value_and_grad(make_objective(model, batch), has_aux=True)(*args)
    (value_off, out_off), grads_off = jax.value_and_grad(make_objective(plain, batch), has_aux=True)(*args)
    # Same forward computation.
    for a, b in zip(jax.tree.leaves(out_on), jax.tree.leaves(out_off), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(float(value_on), float(value_off), rtol=1e-6)
    flat_on = jax.tree_util.tree_flatten_with_path(grads_on)[0]
    flat_off = jax.tree.leaves(grads_off)
    overall = max(float(np.max(np.abs(g))) for g in flat_off)
    for (path, g_on), g_off in zip(flat_on, flat_off, strict=True):
        g_on, g_off = np.asarray(g_on, np.float64), np.asarray(g_off, np.float64)
        scale = float(np.max(np.abs(g_off)))
        if scale <= 1e-6 * overall:
            # Conv biases feeding BatchNorm: the true gradient is exactly zero and both paths give rounding
            # noise; the custom one must be numerically zero as well.
            assert np.max(np.abs(g_on)) <= 1e-6 * overall, jax.tree_util.keystr(path)
            continue
        err = float(np.max(np.abs(g_on - g_off))) / scale
        assert err <= TOL, f"{jax.tree_util.keystr(path)}: relative gradient error {err:.2e}"
    for name in ("attention_rnn", "decoder_rnn"):
        assert np.max(np.abs(grads_off["decoder"][name]["w_hh"])) > 0  # the comparison is not vacuous
    return tuple(str(jax.make_jaxpr(make_objective(m, batch))(*args)) for m in (model, plain))


@pytest.mark.parametrize("unroll", [1, 3])
def test_custom_vjp_gradients_equal_autodiff(unroll):
    # r = 2 with lengths that are not multiples of it: padded steps and a partial last step are included.
    # Unrolled 3 steps per iteration, 10 decoder steps leave a remainder iteration.
    on, off, variables = model_pair(n_frames_per_step=2, decoder_scan_unroll=unroll)
    batch = jax.tree.map(jnp.asarray, random_batch(0, [9, 6, 4], [20, 15, 11], N_SYMBOLS))
    jaxpr_on, jaxpr_off = assert_same_gradients(on, off, variables, batch)
    # The custom rule really is in the program that was differentiated (two different programs compared).
    assert "custom_vjp_call" in jaxpr_on and "custom_vjp_call" not in jaxpr_off


def test_rematerialised_decoder_gradients_equal_autodiff():
    _, plain, variables = model_pair(n_frames_per_step=2)
    remat = build_model(tiny_model_config(decoder_custom_vjp=False, decoder_remat=True, n_frames_per_step=2), N_SYMBOLS)
    batch = jax.tree.map(jnp.asarray, random_batch(0, [9, 6, 4], [20, 15, 11], N_SYMBOLS))
    jaxpr_remat, jaxpr_plain = assert_same_gradients(remat, plain, variables, batch)
    assert "remat" in jaxpr_remat and "remat" not in jaxpr_plain  # jax.checkpoint's primitive
    with pytest.raises(ConfigError, match="decoder_remat"):
        load_config(None, ["model.decoder_remat=true"])  # the custom VJP (default) has its own residuals


def test_custom_vjp_is_only_used_in_training():
    # Evaluation (no dropout, no gradient) takes the plain scan; both flags give identical outputs.
    on, off, variables = model_pair()
    batch = jax.tree.map(jnp.asarray, random_batch(1, [8, 5], [12, 9], N_SYMBOLS))
    out_on = on.apply(variables, batch.text, batch.text_len, batch.mel, batch.mel_len, train=False)
    out_off = off.apply(variables, batch.text, batch.text_len, batch.mel, batch.mel_len, train=False)
    for a, b in zip(jax.tree.leaves(out_on), jax.tree.leaves(out_off), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
