"""The optimizer-side controllers (taco_jax.control.clip and .optim), composed as the trainer composes them
(taco_jax.train.controllers.build_optimizer), against hand-computed sequences and the plain NVIDIA chain."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from taco_jax.config import Config, ConfigError
from taco_jax.control import ClipThresholdState, PercentileClipThreshold
from taco_jax.control.optim import (
    applied_clip_threshold,
    consecutive_nonfinite,
    current_lr,
    last_step_finite,
    lower_lr_scale,
    lr_scale,
    nonfinite_count,
    optimizer_steps,
)
from taco_jax.train.controllers import build_optimizer, lr_schedule

NAN = float("nan")
# "scale" mirrors a Flax BatchNorm parameter: Adam's moments then hold a "scale" key, which the readers must ignore.
PARAMS = {"w": jnp.array([0.5, -1.0, 2.0], jnp.float32), "scale": jnp.array([1.0, 1.0], jnp.float32)}


# Each keyword of `make_tx` sets one config key.
_KEYS = {
    "lr": "optim.lr", "schedule": "optim.schedule", "warmup_steps": "optim.warmup_steps",
    "decay_steps": "optim.decay_steps", "decay_rate": "optim.decay_rate", "min_lr": "optim.min_lr",
    "grad_clip": "optim.grad_clip", "weight_decay": "optim.weight_decay", "adaptive_clip": "control.clip.enabled",
    "clip_percentile": "control.clip.percentile", "clip_window": "control.clip.window", "clip_min": "control.clip.min",
    "clip_max": "control.clip.max", "clip_min_history": "control.clip.min_history",
    "plateau_enabled": "control.lr_plateau.enabled", "plateau_factor": "control.lr_plateau.factor",
    "plateau_patience": "control.lr_plateau.patience", "plateau_cooldown": "control.lr_plateau.cooldown",
    "plateau_accumulation": "control.lr_plateau.accumulation", "plateau_rtol": "control.lr_plateau.rtol",
    "plateau_atol": "control.lr_plateau.atol", "min_lr_scale": "control.lr_plateau.min_scale",
    "guard_enabled": "control.nonfinite.enabled", "nonfinite_factor": "control.nonfinite.lr_factor",
    "max_consecutive_nonfinite": "control.nonfinite.max_consecutive", "accumulate_steps": "control.accumulate_steps",
}  # fmt: skip
# A decaying schedule: 1e-3 * 0.1 ** (step / 10).
DECAY = dict(lr=1e-3, schedule="warmup_exponential", warmup_steps=0, decay_steps=10, decay_rate=0.1, min_lr=0.0)


def config(**settings) -> Config:
    """The default config with the given settings (guard and plateau averaging off unless set)."""
    cfg = Config()
    for name, value in {"guard_enabled": False, "plateau_accumulation": 1, **settings}.items():
        *path, attr = _KEYS[name].split(".")
        setattr(functools.reduce(getattr, path, cfg), attr, value)
    return cfg


def make_tx(**settings):
    return build_optimizer(config(**settings))


def grads_with_norm(norm: float) -> dict:
    """Gradients whose global norm is exactly ``norm`` (NaN or inf propagate)."""
    return {"w": jnp.array([norm, 0.0, 0.0], jnp.float32), "scale": jnp.zeros([2], jnp.float32)}


def random_grads(seed: int, magnitude: float) -> dict:
    k1, k2 = jax.random.split(jax.random.key(seed))
    return {"w": magnitude * jax.random.normal(k1, (3,)), "scale": magnitude * jax.random.normal(k2, (2,))}


def run(tx, grads_seq, values=None, *, jit=True, params=PARAMS):
    """[(updates, opt_state)] after each call; params stay fixed."""
    update = jax.jit(tx.update) if jit else tx.update
    state = tx.init(params)
    out = []
    for i, grads in enumerate(grads_seq):
        kwargs = {} if values is None else {"value": jnp.float32(values[i])}
        updates, state = update(grads, state, params, **kwargs)
        out.append((updates, state))
    return out


def assert_trees_equal(a, b) -> None:
    leaves_a, tree_a = jax.tree.flatten(a)
    leaves_b, tree_b = jax.tree.flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def assert_scales(steps, expected) -> None:
    """The LR scale after each step, exactly (as f32)."""
    np.testing.assert_array_equal(np.array([lr_scale(s) for _, s in steps]), np.float32(expected))


def assert_zero(updates) -> None:
    for leaf in jax.tree.leaves(updates):
        np.testing.assert_array_equal(np.asarray(leaf), 0.0)


# ---------------------------------------------------------------------------------------------- adaptive clip


def test_percentile_threshold_sequence_window4_p50() -> None:
    sched = PercentileClipThreshold(1.0, percentile=50.0, window=4, min_threshold=0.5, max_threshold=8.0, min_history=2)
    state = sched.init()
    assert float(sched(state)) == 1.0
    # history after each norm:  [2] | [2,4] | NaN skipped | [2,4,6] | [2,4,6,8] | ring: [10,4,6,8] | [10,100,6,8]
    norms = [2.0, 4.0, NAN, 6.0, 8.0, 10.0, 100.0, float("inf")]
    expected = [1.0, 3.0, 3.0, 4.0, 5.0, 7.0, 8.0, 8.0]  # <2 entries: initial; median; last one clamped from 9
    filled = [1, 2, 2, 3, 4, 4, 4, 4]
    for norm, want, n in zip(norms, expected, filled, strict=True):
        state = sched.update(state, grad_norm=norm)
        assert float(sched(state)) == want
        assert int(state.filled) == n
    np.testing.assert_array_equal(np.asarray(state.norms), [10.0, 100.0, 6.0, 8.0])

    low = PercentileClipThreshold(1.0, percentile=50.0, window=4, min_threshold=0.5, max_threshold=8.0, min_history=2)
    state = low.update(low.update(low.init(), grad_norm=0.1), grad_norm=0.2)
    assert float(low(state)) == 0.5  # median 0.15 clamped up to min


def test_adaptive_clip_in_chain_uses_history_before_the_step() -> None:
    tx = make_tx(
        lr=1e-3, grad_clip=1.0, adaptive_clip=True, clip_percentile=50.0, clip_window=4,
        clip_min=0.5, clip_max=8.0, clip_min_history=2, weight_decay=0.0,
    )  # fmt: skip
    steps = run(tx, [grads_with_norm(n) for n in (2.0, 4.0, 6.0, 8.0)])
    applied = [float(applied_clip_threshold(s)) for _, s in steps]
    upcoming = [float(optax.tree.get(s, "ClipThresholdState").threshold) for _, s in steps]
    assert applied == [1.0, 1.0, 3.0, 4.0]
    assert upcoming == [1.0, 3.0, 4.0, 5.0]
    assert float(optax.tree.get(tx.init(PARAMS), "ClipThresholdState").threshold) == 1.0
    # The applied threshold really clips: Adam's first moment gains (1 - b1) * clipped grad; step 3 clips 6 -> 3.
    mu2 = optax.tree.get(steps[1][1], "ScaleByAdamState").mu["w"]
    mu3 = optax.tree.get(steps[2][1], "ScaleByAdamState").mu["w"]
    np.testing.assert_allclose(np.asarray(mu3 - 0.9 * mu2), [0.3, 0.0, 0.0], rtol=1e-5, atol=1e-7)

    # Guard off: a NaN gradient reaches the controller, which does not record its norm.
    nan_steps = run(tx, [grads_with_norm(n) for n in (2.0, NAN, 4.0)])
    clip_state = optax.tree.get(nan_steps[-1][1], "ClipThresholdState")
    assert isinstance(clip_state, ClipThresholdState)
    assert int(clip_state.filled) == 2
    np.testing.assert_array_equal(np.asarray(clip_state.norms), [2.0, 4.0, 0.0, 0.0])


# ---------------------------------------------------------------------------------------------- LR scale


def test_plateau_scale_sequence_and_scaled_updates() -> None:
    kwargs = dict(lr=1e-3, weight_decay=1e-6)
    tx = make_tx(
        **kwargs, plateau_enabled=True, plateau_factor=0.5, plateau_patience=2, plateau_cooldown=1, min_lr_scale=0.2
    )
    losses = [10, 10, 10, 10, 10, 10, 5, 5, 5, 5, 5, 1]
    # best 10 | pc1 | pc2 -> x0.5, cooldown | cooldown | pc1 | pc2 -> x0.5 | cooldown (best 5) | pc1 | pc2 -> 0.125,
    # floored to 0.2 | cooldown | pc1 | improves: never rises.
    expected = [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2]
    grads = [random_grads(i, 2.0) for i in range(len(losses))]
    steps = run(tx, grads, losses)
    assert_scales(steps, expected)
    ref = run(make_tx(**kwargs), grads)  # same chain, scale stays 1.0
    for (upd, state), (ref_upd, _) in zip(steps, ref, strict=True):
        for a, b in zip(jax.tree.leaves(upd), jax.tree.leaves(ref_upd), strict=True):
            # XLA may fold scale and lr into one multiply: equal to within an ulp, not bitwise.
            np.testing.assert_allclose(np.asarray(a), np.asarray(lr_scale(state) * b), rtol=3e-7, atol=0)


def test_nonfinite_steps_lower_scale_to_floor_and_it_never_rises() -> None:
    tx = make_tx(lr=1e-3, guard_enabled=True, nonfinite_factor=0.5, min_lr_scale=0.3, max_consecutive_nonfinite=10)
    steps = run(tx, [grads_with_norm(n) for n in (1.0, NAN, NAN, NAN, 1.0, 1.0)])
    assert_scales(steps, [1.0, 0.5, 0.3, 0.3, 0.3, 0.3])

    # With the plateau on, both lower the same scale.
    tx = make_tx(
        lr=1e-3, guard_enabled=True, nonfinite_factor=0.5, plateau_enabled=True, plateau_factor=0.5,
        plateau_patience=1, min_lr_scale=0.1,
    )  # fmt: skip
    steps = run(tx, [grads_with_norm(1.0)] * 4, [1.0, NAN, 2.0, 0.1])
    # best 1 | non-finite: x0.5 | no improvement, patience 1: x0.5 | improves: unchanged
    assert_scales(steps, [1.0, 0.5, 0.25, 0.25])


def test_lower_lr_scale_is_pure_floored_and_plateau_does_not_lift_it() -> None:
    tx = make_tx(lr=1e-3, plateau_enabled=True, plateau_patience=1, min_lr_scale=0.2)
    state = tx.init(PARAMS)
    lowered = lower_lr_scale(state, 0.1, 0.05)
    assert float(lr_scale(lowered)) == pytest.approx(0.1)
    assert float(lr_scale(state)) == 1.0  # the input is not modified
    assert jax.tree.structure(lowered) == jax.tree.structure(state)
    assert lr_scale(lowered).dtype == lr_scale(state).dtype
    assert float(lr_scale(lower_lr_scale(lowered, 0.1, 0.05))) == pytest.approx(0.05)
    assert float(lr_scale(lower_lr_scale(lowered, 2.0, 0.0))) == pytest.approx(0.1)  # never raises
    # reduce_on_plateau alone would lift 0.1 back to its min_scale 0.2 at its next decision.
    update = jax.jit(tx.update)
    _, after = update(grads_with_norm(1.0), lowered, PARAMS, value=jnp.float32(1.0))
    _, after = update(grads_with_norm(1.0), after, PARAMS, value=jnp.float32(1.0))
    assert float(lr_scale(after)) == pytest.approx(0.1)


# ---------------------------------------------------------------------------------------------- non-finite guard


def _rich_tx(nonfinite_factor: float, max_consecutive: int = 5):
    return make_tx(
        **DECAY, adaptive_clip=True, clip_window=4, clip_min_history=1,
        plateau_enabled=True, guard_enabled=True, nonfinite_factor=nonfinite_factor,
        max_consecutive_nonfinite=max_consecutive,
    )  # fmt: skip


def test_nan_gradient_step_is_skipped_and_counted() -> None:
    tx = _rich_tx(nonfinite_factor=1.0)
    grads = [random_grads(0, 3.0), random_grads(1, 0.1), grads_with_norm(NAN), grads_with_norm(NAN), random_grads(2, 1)]
    steps = run(tx, grads, [3.0, 2.0, 1.0, 1.0, 1.0])
    for i in (2, 3):
        updates, state = steps[i]
        assert_zero(updates)
        assert_trees_equal(state.inner_state, steps[1][1].inner_state)
    assert [int(nonfinite_count(s)) for _, s in steps] == [0, 0, 1, 2, 2]
    assert [int(consecutive_nonfinite(s)) for _, s in steps] == [0, 0, 1, 2, 0]
    assert [bool(last_step_finite(s)) for _, s in steps] == [True, True, False, False, True]
    assert int(optimizer_steps(steps[-1][1])) == 3

    # With nonfinite_factor < 1 the LR scale is the only other thing that changes.
    tx = _rich_tx(nonfinite_factor=0.5)
    steps = run(tx, grads[:3], [3.0, 2.0, 1.0])
    assert_zero(steps[2][0])
    assert float(lr_scale(steps[2][1])) == 0.5
    assert_trees_equal(steps[2][1].inner_state, lower_lr_scale(steps[1][1], 0.5, 0.0).inner_state)


@pytest.mark.parametrize("loss", [NAN, float("inf")])
def test_nonfinite_loss_with_finite_grads_is_skipped(loss: float) -> None:
    tx = _rich_tx(nonfinite_factor=1.0)
    steps = run(tx, [random_grads(0, 1.0), random_grads(1, 1.0)], [2.0, loss])
    updates, state = steps[1]
    assert_zero(updates)
    assert_trees_equal(state.inner_state, steps[0][1].inner_state)
    assert int(nonfinite_count(state)) == 1 and int(consecutive_nonfinite(state)) == 1


def test_guard_gives_up_after_max_consecutive() -> None:
    tx = _rich_tx(nonfinite_factor=1.0, max_consecutive=2)
    steps = run(tx, [grads_with_norm(NAN)] * 3, [1.0] * 3)
    assert_zero(steps[0][0])
    assert_zero(steps[1][0])
    assert np.isnan(np.asarray(steps[2][0]["w"])).all()  # optax's rule: the 3rd in a row goes through
    assert int(consecutive_nonfinite(steps[2][1])) == 3


# ---------------------------------------------------------------------------------------------- accumulation


def test_multisteps_k2_applies_every_second_call_on_the_mean_gradient() -> None:
    tx = make_tx(lr=1e-2, weight_decay=1e-2, accumulate_steps=2)
    grads = [random_grads(i, 1.5) for i in range(4)]
    steps = run(tx, grads)
    means = [jax.tree.map(lambda a, b: (a + b) / 2, grads[i], grads[i + 1]) for i in (0, 2)]
    ref = run(make_tx(lr=1e-2, weight_decay=1e-2), means)
    assert_zero(steps[0][0])
    assert_zero(steps[2][0])
    for (upd, _), (ref_upd, _) in zip([steps[1], steps[3]], ref, strict=True):
        for a, b in zip(jax.tree.leaves(upd), jax.tree.leaves(ref_upd), strict=True):
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-9)
    assert [int(optimizer_steps(s)) for _, s in steps] == [0, 1, 1, 2]

    # Guard outside the accumulator: a NaN micro-step is dropped as if it never happened.
    guarded = make_tx(lr=1e-2, weight_decay=1e-2, accumulate_steps=2, guard_enabled=True, nonfinite_factor=1.0)
    steps_nan = run(guarded, [grads[0], grads_with_norm(NAN), grads[1]])
    assert_zero(steps_nan[1][0])
    for a, b in zip(jax.tree.leaves(steps_nan[2][0]), jax.tree.leaves(steps[1][0]), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_multisteps_plateau_sees_the_mean_loss_of_the_micro_steps() -> None:
    tx = make_tx(lr=1e-3, accumulate_steps=2, plateau_enabled=True, plateau_patience=1, plateau_factor=0.5)
    # Means 3 then 3.5: no improvement -> x0.5. (The last micro-losses, 4 then 2, would have improved.)
    steps = run(tx, [grads_with_norm(1.0)] * 4, [2.0, 4.0, 5.0, 2.0])
    assert_scales(steps, [1.0, 1.0, 1.0, 0.5])


# ---------------------------------------------------------------------------------------------- equivalence, jit


@pytest.mark.parametrize("jit", [False, True])
def test_everything_off_equals_the_plain_optax_chain_bitwise(jit: bool) -> None:
    settings = dict(lr=1e-2, weight_decay=1e-2, grad_clip=1.0, schedule="warmup_exponential", warmup_steps=2)
    tx = make_tx(**settings, decay_steps=3)
    schedule = lr_schedule(config(**settings, decay_steps=3))
    # NVIDIA's recipe written out with optax alone: clip_grad_norm_, then torch.optim.Adam's coupled L2.
    ref = optax.chain(
        optax.clip_by_global_norm(1.0), optax.add_decayed_weights(1e-2), optax.scale_by_adam(),
        optax.scale_by_learning_rate(optax.join_schedules(
            [optax.linear_schedule(0.0, 1e-2, 2), optax.exponential_decay(1e-2, 3, 0.5, end_value=1e-5)], [2]
        )),
    )  # fmt: skip
    update, ref_update = (jax.jit(tx.update), jax.jit(ref.update)) if jit else (tx.update, ref.update)
    params, ref_params = PARAMS, PARAMS
    state, ref_state = tx.init(params), ref.init(ref_params)
    for i, magnitude in enumerate([3.0, 0.1, 5.0, 0.3, 2.0, 0.05]):  # above and below the clip
        grads = random_grads(i, magnitude)
        updates, state = update(grads, state, params, value=jnp.float32(1.0))
        ref_updates, ref_state = ref_update(grads, ref_state, ref_params)
        assert_trees_equal(updates, ref_updates)
        params, ref_params = optax.apply_updates(params, updates), optax.apply_updates(ref_params, ref_updates)
    assert_trees_equal(params, ref_params)
    assert float(lr_scale(state)) == 1.0 and float(applied_clip_threshold(state)) == 1.0
    assert int(nonfinite_count(state)) == 0 and bool(last_step_finite(state))
    assert float(current_lr(state, schedule)) == pytest.approx(float(schedule(6)))


def test_jit_update_equals_eager() -> None:
    tx = make_tx(
        **DECAY, adaptive_clip=True, clip_window=4, clip_min_history=2,
        clip_min=0.1, clip_max=2.0, plateau_enabled=True, plateau_patience=1, guard_enabled=True,
        accumulate_steps=2,
    )  # fmt: skip
    grads = [random_grads(0, 3.0), random_grads(1, 0.5), grads_with_norm(NAN), random_grads(2, 1.0)]
    grads += [random_grads(3, 2.0), random_grads(4, 0.2)]
    losses = [3.0, 2.0, 1.0, NAN, 2.5, 2.5]
    eager = run(tx, grads, losses, jit=False)
    jitted = run(tx, grads, losses, jit=True)
    for (upd_e, st_e), (upd_j, st_j) in zip(eager, jitted, strict=True):
        for a, b in zip(jax.tree.leaves((upd_e, st_e)), jax.tree.leaves((upd_j, st_j)), strict=True):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    final = jitted[-1][1]
    assert int(nonfinite_count(final)) == 2 and int(optimizer_steps(final)) == 2
    schedule = lr_schedule(config(**DECAY))
    expected_lr = float(schedule(2)) * float(lr_scale(final))
    assert float(current_lr(final, schedule)) == pytest.approx(expected_lr)


# ---------------------------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("settings", "section", "name"),
    [
        (dict(lr=-1.0), "optim", "lr"),
        (dict(grad_clip=0.0), "optim.grad_clip", "max_norm"),
        (dict(grad_clip=float("nan")), "optim.grad_clip", "max_norm"),
        (dict(adaptive_clip=True, clip_percentile=101.0), "control.clip", "percentile"),
        (dict(adaptive_clip=True, clip_window=0), "control.clip", "window"),
        (dict(adaptive_clip=True, clip_min=-1.0), "control.clip", "min_threshold"),
        (dict(adaptive_clip=True, clip_min=2.0, clip_max=1.0), "control.clip", "max_threshold"),
        (dict(adaptive_clip=True, clip_min_history=0), "control.clip", "min_history"),
        (dict(adaptive_clip=True, clip_window=4, clip_min_history=5), "control.clip", "min_history"),
        (dict(adaptive_clip=True, grad_clip=5.0, clip_max=2.0), "control.clip", "initial"),
        (dict(plateau_enabled=True, plateau_factor=1.0), "control.lr_plateau", "factor"),
        (dict(plateau_enabled=True, plateau_patience=0), "control.lr_plateau", "patience"),
        (dict(plateau_enabled=True, plateau_cooldown=-1), "control.lr_plateau", "cooldown"),
        (dict(plateau_enabled=True, plateau_accumulation=0), "control.lr_plateau", "accumulation"),
        (dict(plateau_enabled=True, plateau_rtol=-0.1), "control.lr_plateau", "rtol"),
        (dict(plateau_enabled=True, plateau_atol=-0.1), "control.lr_plateau", "atol"),
        (dict(plateau_enabled=True, plateau_rtol=0.0, plateau_atol=0.0), "control.lr_plateau", "rtol"),
        (dict(plateau_enabled=True, min_lr_scale=1.5), "control.lr_plateau", "min_scale"),
        (dict(guard_enabled=True, nonfinite_factor=0.0), "control.nonfinite", "lr_factor"),
        (dict(guard_enabled=True, max_consecutive_nonfinite=0), "control.nonfinite", "max_consecutive"),
        (dict(accumulate_steps=0), "control.accumulate_steps", "every_k"),
        (dict(accumulate_steps=2.0), "control.accumulate_steps", "every_k"),
    ],
)
def test_invalid_settings_name_the_config_section_and_the_argument(settings: dict, section: str, name: str) -> None:
    with pytest.raises(ConfigError, match=f"config section '{section}': {name} "):
        make_tx(**settings)


def test_plateau_without_value_is_a_clear_error() -> None:
    tx = make_tx(lr=1e-3, plateau_enabled=True)
    with pytest.raises(ValueError, match="value=loss"):
        tx.update(grads_with_norm(1.0), tx.init(PARAMS), PARAMS)


def test_readers_find_states_by_type_not_by_parameter_names() -> None:
    """A parameter tree with fields named like the controllers' (scale, max_norm, count) does not confuse them."""
    params = {"scale": jnp.ones(2), "max_norm": jnp.ones(1), "count": jnp.ones(3), "last_finite": jnp.ones(1)}
    tx = make_tx(lr=1e-3, guard_enabled=True)
    state = tx.init(params)
    assert float(lr_scale(state)) == 1.0 and float(applied_clip_threshold(state)) == 1.0
    assert int(optimizer_steps(state)) == 0 and bool(last_step_finite(state))
    assert float(lr_scale(lower_lr_scale(state, 0.5, 0.0))) == 0.5
    is_adam = lambda x: isinstance(x, optax.ScaleByAdamState)  # noqa: E731
    (adam,) = [x for x in jax.tree.leaves(lower_lr_scale(state, 0.5, 0.0), is_leaf=is_adam) if is_adam(x)]
    np.testing.assert_array_equal(np.asarray(adam.mu["scale"]), 0.0)  # Adam's moment named "scale" is not the LR
    with pytest.raises(ValueError, match="no LR scale"):
        lr_scale(optax.adam(1e-3).init(params))
