"""Alignment controllers: every rule checked against sequences written out by hand (not the code's own output)."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from taco_jax.control import (
    PHASE_NAMES,
    GAWeightState,
    PhaseState,
    ga_weight_controller,
    guided_attention_schedule,
    improvement,
    learning_rate_schedule,
    phase_controller,
)


def const(w):
    return lambda step: jnp.asarray(w, jnp.float32)


def run(ctrl, diags, *, start=0, state=None, **kw):
    """Feed one diagonality per step; return the states after each update."""
    state = ctrl.init() if state is None else state
    out = []
    for i, d in enumerate(diags):
        state = ctrl.update(state, d, start + i, **kw)
        out.append(state)
    return out


def field(states, name):
    return [float(getattr(s, name)) for s in states]


# --------------------------------------------------------------------------- GA weight controller


def test_ga_state_dtypes_and_init():
    ctrl = ga_weight_controller(const(1.0), cooldown=7, init_mult=2.0)
    s = ctrl.init()
    assert isinstance(s, GAWeightState)
    assert [x.dtype for x in s] == [jnp.float32, jnp.float32, jnp.int32, jnp.int32, jnp.int32, jnp.float32, jnp.float32]
    assert (float(s.mult), int(s.cooldown), int(s.n_obs), int(s.level)) == (2.0, 7, 0, 0)
    assert float(s.ema_ref) == -math.inf
    assert float(s.ema_balance) == math.inf


def test_ga_hand_computed_sequence_interval_2_cooldown_4_decay_half():
    ctrl = ga_weight_controller(const(1.0), interval=2, cooldown=4, ema_decay=0.5)
    diags = [0.0, 0.0, 0.0, 0.0, 0.125, 0.5, 0.5, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.0]
    states = run(ctrl, diags)
    # ema' = (ema + d) / 2, starting from the first observation; all values are exact in f32.
    ema = [0.0, 0.0, 0.0, 0.0, 0.0625, 0.28125, 0.390625, 0.6953125, 0.84765625, 0.423828125, 0.2119140625,
           0.10595703125, 0.302978515625, 0.1514892578125, 0.07574462890625, 0.037872314453125]  # fmt: skip
    # s0-s3: initial cooldown; s4: ema 0.0625 < 0.1 -> x2.5; s6: blocked by cooldown; s8: 0.85 > 0.7 -> x0.9;
    # s10: 0.21 < 0.3 but in cooldown; s12: 0.303 in the dead band; s14: 0.076 < 0.1 -> x2.5.
    mult = [1, 1, 1, 1, 2.5, 2.5, 2.5, 2.5, 2.25, 2.25, 2.25, 2.25, 2.25, 2.25, 5.625, 5.625]
    cooldown = [3, 2, 1, 0, 4, 3, 2, 1, 4, 3, 2, 1, 0, 0, 4, 3]
    level = [0, 0, 0, 0, 2, 2, 2, 2, -1, -1, -1, -1, -1, -1, 2, 2]
    assert field(states, "ema_diag") == ema
    np.testing.assert_allclose(field(states, "mult"), mult, rtol=1e-6)
    assert field(states, "cooldown") == cooldown
    assert field(states, "level") == level
    assert field(states, "n_obs") == list(range(1, 17))


def test_ga_start_delay_holds_the_first_decision_then_cooldown_spaces_the_rest():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=2, start_delay=5, ema_decay=0.0)
    states = run(ctrl, [0.0] * 10)
    # Always misaligned (x3 wanted at every step). The state starts as if a change had just been made
    # before step 0 with a cooldown of 5: the first raise comes at step 4, then one every 2 steps.
    assert field(states, "mult") == [1, 1, 1, 1, 3, 3, 9, 9, 27, 27]
    assert field(states, "cooldown") == [4, 3, 2, 1, 2, 1, 2, 1, 2, 1]
    # Without start_delay the first decision waits as long as any other (cooldown 2: step 1).
    states = run(ga_weight_controller(const(1.0), interval=1, cooldown=2, ema_decay=0.0), [0.0] * 4)
    assert field(states, "mult") == [1, 3, 3, 9]


def test_ga_min_progress_raises_only_while_stalled():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.0, min_progress=0.05)
    diags = [0.1, 0.1, 0.2, 0.22, 0.22, 0.9, 0.9]
    states = run(ctrl, diags)
    # s0: no reference yet -> no raise; s1: +0.0 < 0.05, 0.1 < 0.3 -> x1.5; s2: +0.1, rising -> none;
    # s3: +0.02 -> x1.5; s4: +0.0 -> x1.5; s5: > 0.7 -> x0.9 (decreases are never gated); s6: x0.9 again.
    np.testing.assert_allclose(field(states, "mult"), [1, 1.5, 1.5, 2.25, 3.375, 3.0375, 2.73375], rtol=1e-6)
    assert field(states, "level") == [0, 3, 3, 3, 3, -1, -1]
    np.testing.assert_allclose(field(states, "ema_ref"), diags, rtol=1e-7)


def test_ga_min_progress_reference_is_taken_at_every_interval_multiple():
    # interval 2, cooldown 4: references at s0, s2, s4, ... even while the cooldown blocks decisions.
    ctrl = ga_weight_controller(const(1.0), interval=2, cooldown=4, start_delay=0, ema_decay=0.0, min_progress=0.05)
    states = run(ctrl, [0.2, 0.2, 0.2, 0.2, 0.25, 0.25, 0.27, 0.27, 0.27])
    # s0: no reference; s2: stalled -> x1.5 (cooldown 4: next decision at s6); s4: reference 0.25 taken
    # although the cooldown blocks deciding; s6: +0.02 since s4 -> stalled -> x1.5 (measured from the last
    # decision, s2, it would be +0.07: progressing, no raise); s8: in cooldown.
    assert field(states, "mult") == [1, 1, 1.5, 1.5, 1.5, 1.5, 2.25, 2.25, 2.25]
    np.testing.assert_allclose(field(states, "ema_ref"), [0.2, 0.2, 0.2, 0.2, 0.25, 0.25, 0.27, 0.27, 0.27])


def run_losses(ctrl, diags, ga_losses, rest_losses):
    state, out = ctrl.init(), []
    for step, (d, g, r) in enumerate(zip(diags, ga_losses, rest_losses, strict=True)):
        state = ctrl.update(state, d, step, ga_loss=g, rest_loss=r)
        out.append(state)
    return out


def test_ga_max_loss_ratio_clamps_raises_to_the_loss_balance():
    # Schedule 2, ratio 0.5, EMA decay 1/2 for the balance rest / ga; always misaligned (x3 wanted).
    ctrl = ga_weight_controller(const(2.0), interval=1, cooldown=0, start_delay=0, ema_decay=0.5, max_loss_ratio=0.5)
    ga = [0.5, 0.5, 0.25, 0.5, 0.0, math.nan, 0.5]
    rest = [4.0, 2.0, 1.5, 2.0, 3.0, 1.0, 2.0]
    states = run_losses(ctrl, [0.0] * 7, ga, rest)
    # balance: 8 (first), (8 + 4) / 2 = 6, (6 + 6) / 2 = 6, (6 + 4) / 2 = 5, ga 0 and NaN skipped: 5, 5,
    # then (5 + 4) / 2 = 4.5. Bound on mult = 0.5 * balance / 2.
    assert field(states, "ema_balance") == [8.0, 6.0, 6.0, 5.0, 5.0, 5.0, 4.5]
    # s0: x3 -> 3 > bound 2 -> 2; s1: bound 1.5 < mult: no raise, no decrease (not a decision, level stays);
    # s2: bound 1.5; s3: bound 1.25; s4, s5: 1.25; s6: 1.125 - a bound below the multiplier never lowers it.
    assert field(states, "mult") == [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert field(states, "level") == [1, 1, 1, 1, 1, 1, 1]
    # Far from the bound the ladder is unchanged until it reaches it: balance 80 -> bound 20.
    states = run_losses(ctrl, [0.0] * 3, [0.01] * 3, [0.8] * 3)
    np.testing.assert_allclose(field(states, "mult"), [3.0, 9.0, 20.0], rtol=1e-6)


def test_ga_max_loss_ratio_does_not_bound_decreases_and_needs_the_losses():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.0, max_loss_ratio=0.1, init_mult=4.0)
    states = run_losses(ctrl, [0.9, 0.9], [1.0, 1.0], [1.0, 1.0])
    np.testing.assert_allclose(field(states, "mult"), [3.6, 3.24], rtol=1e-6)  # above the bound 0.1: x0.9
    with pytest.raises(ValueError, match="max_loss_ratio"):
        ctrl.update(ctrl.init(), 0.0, 0)
    with pytest.raises(ValueError, match="^max_loss_ratio "):
        ga_weight_controller(const(1.0), max_loss_ratio=0.0)


@pytest.mark.parametrize("bad", [-1, 2.5, "3"])
def test_ga_start_delay_validated(bad):
    with pytest.raises(ValueError, match="start_delay"):
        ga_weight_controller(const(1.0), start_delay=bad)


@pytest.mark.parametrize(
    "diag, mult, level",
    [
        (0.01, 3.0, 1),
        (0.05, 2.5, 2),  # "below 0.05" is strict
        (0.07, 2.5, 2),
        (0.2, 1.5, 3),
        (0.3, 1.0, 0),
        (0.5, 1.0, 0),
        (0.7, 1.0, 0),  # "above 0.7" is strict
        (0.9, 0.9, -1),
        (1.0, 0.9, -1),
    ],
)
def test_ga_each_level_first_match_only(diag, mult, level):
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0)
    (s,) = run(ctrl, [diag])
    assert float(s.mult) == pytest.approx(mult, rel=1e-6)
    assert int(s.level) == level


def test_ga_decisions_only_at_interval_multiples():
    ctrl = ga_weight_controller(const(1.0), interval=3, cooldown=0, ema_decay=0.0)
    states = run(ctrl, [0.2] * 7)  # steps 0..6: decisions at 0, 3, 6
    np.testing.assert_allclose(field(states, "mult"), [1.5, 1.5, 1.5, 2.25, 2.25, 2.25, 3.375], rtol=1e-6)


def test_ga_cap_clamps_multiplier_and_value():
    ctrl = ga_weight_controller(const(20.0), interval=1, cooldown=0, cap=50.0)
    (s,) = run(ctrl, [0.01])  # 20 x 3 = 60 > 50 -> mult 50 / 20
    assert float(s.mult) == 2.5
    assert float(ctrl.value(s, 0)) == 50.0
    # value() clamps too: a multiplier set under a smaller schedule, read under a larger one.
    assert float(ctrl.value(s._replace(mult=jnp.float32(3.0)), 0)) == 50.0
    assert float(ga_weight_controller(const(4.0)).value(s, 0)) == 10.0


def test_ga_cap_wins_over_target_floor():
    ctrl = ga_weight_controller(const(20.0), interval=1, cooldown=0, cap=50.0)
    (s,) = run(ctrl, [0.5], target_mult=jnp.float32(4.0))
    assert float(s.mult) == 2.5


def test_ga_min_mult_floor_and_noop_keeps_no_cooldown():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=2, ema_decay=0.0, init_mult=0.6, min_mult=0.5)
    states = run(ctrl, [0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.01])
    # s0 initial cooldown; s1 0.6*0.9; s3 0.486 -> floor 0.5; s5 decrease at the floor is a no-op, so it
    # starts no cooldown and the x3 at s6 is not delayed.
    np.testing.assert_allclose(field(states, "mult"), [0.6, 0.54, 0.54, 0.5, 0.5, 0.5, 1.5], rtol=1e-6)
    assert field(states, "cooldown") == [1, 2, 1, 2, 1, 0, 2]
    assert field(states, "level") == [0, -1, -1, -1, -1, -1, 1]


def test_ga_only_rise_blocks_decreases():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.0)
    states = run(ctrl, [0.9, 0.9, 0.01], only_rise=True)
    assert field(states, "mult") == [1.0, 1.0, 3.0]
    assert field(states, "level") == [0, 0, 1]
    (s,) = run(ctrl, [0.9], only_rise=jnp.asarray(False))
    assert float(s.mult) == pytest.approx(0.9)


def test_ga_target_mult_is_a_floor():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.0)
    (s,) = run(ctrl, [0.5], target_mult=jnp.float32(2.0))  # dead band: moved up to the floor, not a decision
    assert (float(s.mult), int(s.level), int(s.cooldown)) == (2.0, 0, 0)
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.0, init_mult=3.0)
    states = run(ctrl, [0.9] * 5, target_mult=2.0)  # 3 -> 2.7 -> 2.43 -> 2.187 -> (1.9683) 2 -> 2
    np.testing.assert_allclose(field(states, "mult"), [2.7, 2.43, 2.187, 2.0, 2.0], rtol=1e-6)
    states = run(ctrl, [0.01], target_mult=2.0)  # a raise acts on the current multiplier: 3 x 3
    assert float(states[0].mult) == 9.0


def test_ga_ema_starts_at_first_observation_and_skips_non_finite():
    ctrl = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.9)
    s1, s2 = run(ctrl, [0.5, 0.0])
    # From 0 the EMA would read 0.05 and trigger x2.5; from the observation it reads 0.5: no change.
    assert (float(s1.ema_diag), float(s1.mult), int(s1.n_obs)) == (0.5, 1.0, 1)
    assert float(s2.ema_diag) == pytest.approx(0.45)
    n1, n2, n3 = run(ctrl, [math.nan, math.inf, 0.5])
    # No observation yet: no decision, although the stored ema field is 0 (< 0.05).
    assert (float(n1.mult), int(n1.n_obs), float(n1.ema_diag)) == (1.0, 0, 0.0)
    assert (float(n2.mult), int(n2.n_obs)) == (1.0, 0)
    assert (float(n3.ema_diag), int(n3.n_obs)) == (0.5, 1)


def test_ga_zero_schedule_keeps_state_finite():
    ctrl = ga_weight_controller(const(0.0), interval=1, cooldown=0, ema_decay=0.0, max_mult=10.0)
    states = run(ctrl, [0.0] * 4)
    assert field(states, "mult") == [3.0, 9.0, 10.0, 10.0]
    assert float(ctrl.value(states[-1], 0)) == 0.0


def test_ga_jit_equals_eager():
    ctrl = ga_weight_controller(lambda s: 30.0 * jnp.power(0.999, s), interval=2, cooldown=3, ema_decay=0.7)
    jitted = jax.jit(ctrl.update)
    diags = np.random.default_rng(0).uniform(0.0, 1.0, 24).astype(np.float32)
    diags[5] = np.nan
    eager, traced = ctrl.init(), ctrl.init()
    for step, d in enumerate(diags):
        rise, target = jnp.asarray(step < 8), jnp.float32(0.5 + (step % 5) / 4)
        eager = ctrl.update(eager, d, step, only_rise=rise, target_mult=target)
        traced = jitted(traced, jnp.float32(d), jnp.int32(step), only_rise=rise, target_mult=target)
        for a, b in zip(eager, traced, strict=True):
            assert a.dtype == b.dtype and a.shape == ()
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    assert float(jax.jit(ctrl.value)(traced, 7)) == pytest.approx(float(ctrl.value(eager, 7)), rel=1e-6)


def test_ga_disabled_is_inert():
    schedule = lambda s: 80.0 * jnp.power(0.5, s)
    ctrl = ga_weight_controller(schedule, enabled=False, interval=1, cooldown=0)
    s0 = ctrl.init()
    s = ctrl.update(s0, 0.01, 0, only_rise=True, target_mult=5.0)
    assert s is s0
    jax.jit(ctrl.update)(s0, 0.9, 3)  # traceable too
    for step in (0, 1, 5):
        assert float(ctrl.value(s, step)) == float(schedule(step))  # exactly, and above the cap at step 0


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"raise_thresholds": (0.1, 0.05, 0.3)}, "raise_thresholds"),
        ({"raise_thresholds": ()}, "raise_thresholds"),
        ({"raise_thresholds": (0.05, 0.1, 1.3), "decrease_threshold": 1.0}, "raise_thresholds"),
        ({"raise_factors": (3.0, 2.5)}, "raise_factors"),
        ({"raise_factors": (3.0, 0.5, 1.5)}, "raise_factors"),
        ({"decrease_threshold": 0.2}, "decrease_threshold"),
        ({"decrease_factor": 0.0}, "decrease_factor"),
        ({"decrease_factor": 1.5}, "decrease_factor"),
        ({"interval": 0}, "interval"),
        ({"interval": 1.5}, "interval"),
        ({"cooldown": -1}, "cooldown"),
        ({"ema_decay": 1.0}, "ema_decay"),
        ({"ema_decay": -0.1}, "ema_decay"),
        ({"cap": 0.0}, "cap"),
        ({"cap": math.nan}, "cap"),
        ({"min_mult": 0.0}, "min_mult"),
        ({"max_mult": 0.05}, "max_mult"),
        ({"init_mult": 200.0}, "init_mult"),
    ],
)
def test_ga_validation(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        ga_weight_controller(const(1.0), **kwargs)


def test_ga_schedule_must_be_callable():
    with pytest.raises(TypeError, match="^schedule "):
        ga_weight_controller(1.0)


# --------------------------------------------------------------------------- phase machine


def feed(pc, pairs, state=None):
    state = pc.init() if state is None else state
    out = []
    for ema, val in pairs:
        state = pc.update(state, ema, val)
        out.append(state)
    return out


def test_phase_state_dtypes_and_names():
    s = phase_controller().init()
    assert isinstance(s, PhaseState)
    assert [x.dtype for x in s] == [jnp.int32, jnp.int32, jnp.float32, jnp.int32, jnp.int32]
    assert (int(s.phase), float(s.best_val_loss)) == (0, math.inf)
    assert PHASE_NAMES == ("pre_alignment", "alignment_learning", "quality_optimization", "fine_tuning")


def test_phase_hysteresis_and_never_backwards():
    pc = phase_controller(align_start=0.3, align_done=0.7, patience=2)
    emas = [0.35, 0.1, 0.35, 0.35, 0.8, 0.0, 0.8, 0.8, 0.0, 0.0]
    states = feed(pc, [(e, 1.0) for e in emas])
    # One evaluation above 0.3 does not advance; the low value resets the streak; two in a row do.
    # In alignment_learning the streak counts afresh; the drop to 0 after reaching quality changes nothing.
    assert field(states, "phase") == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert field(states, "streak") == [1, 0, 1, 0, 1, 0, 1, 0, 0, 0]
    assert field(states, "evals_in_phase") == [1, 2, 3, 0, 1, 2, 3, 0, 1, 2]


def test_phase_one_advance_per_evaluation():
    pc = phase_controller(patience=2)
    states = feed(pc, [(0.9, 1.0)] * 4)  # above both thresholds all along
    assert field(states, "phase") == [0, 1, 1, 2]


def test_phase_non_finite_diag_breaks_streak():
    pc = phase_controller(patience=2)
    states = feed(pc, [(0.5, 1.0), (math.nan, 1.0), (0.5, 1.0)])
    assert field(states, "streak") == [1, 0, 1]
    assert field(states, "phase") == [0, 0, 0]


def test_phase_plateau_relative_min_delta_and_nan():
    pc = phase_controller(plateau_evals=3, min_delta=0.01)
    start = pc.init()._replace(phase=jnp.int32(2))
    vals = [1.0, 0.995, 0.98, -math.inf, math.nan, 0.975, 0.5]
    states = feed(pc, [(0.9, v) for v in vals], state=start)
    # 0.995 is within 1% of 1.0: no improvement; 0.98 < 0.99 improves; -inf and NaN are never improvements;
    # 0.975 is within 1% of 0.98 (bar 0.9702): the third non-improvement in a row advances to fine_tuning.
    assert field(states, "plateau") == [0, 1, 0, 1, 2, 0, 0]
    assert field(states, "phase") == [2, 2, 2, 2, 2, 3, 3]
    np.testing.assert_allclose(field(states, "best_val_loss"), [1.0, 1.0, 0.98, 0.98, 0.98, 0.98, 0.5], rtol=1e-6)


def test_phase_plateau_counts_only_in_quality_optimization():
    pc = phase_controller(plateau_evals=1)
    states = feed(pc, [(0.0, 1.0), (0.0, 1.0), (0.0, math.nan)])
    assert field(states, "phase") == [0, 0, 0]
    assert field(states, "plateau") == [0, 0, 0]
    assert field(states, "best_val_loss") == [1.0, 1.0, 1.0]


def test_phase_targets_factors_and_only_rise():
    pc = phase_controller(ga_targets=(4.0, 3.0, 2.0, 1.0), lr_factors=(1.0, 0.9, 0.6, 0.3))
    got = []
    for k in range(4):
        s = pc.init()._replace(phase=jnp.int32(k))
        got.append((float(pc.ga_target(s)), float(pc.lr_factor(s)), bool(pc.only_rise(s))))
    assert got == [
        (4.0, 1.0, True),
        (3.0, pytest.approx(0.9), False),
        (2.0, pytest.approx(0.6), False),
        (1.0, pytest.approx(0.3), False),
    ]


def test_phase_jit_equals_eager():
    pc = phase_controller(patience=2, plateau_evals=2, min_delta=0.01)
    pairs = [(0.4, 2.0), (0.5, 1.9), (0.75, 1.5), (0.9, 1.499), (0.9, math.nan), (0.9, 1.4), (0.9, 1.4), (0.9, 1.4)]
    jitted = jax.jit(pc.update)
    eager, traced = pc.init(), pc.init()
    for ema, val in pairs:
        eager = pc.update(eager, ema, val)
        traced = jitted(traced, jnp.float32(ema), jnp.float32(val))
        for a, b in zip(eager, traced, strict=True):
            assert a.dtype == b.dtype
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(traced.phase) == 3
    assert float(jax.jit(pc.lr_factor)(traced)) == pytest.approx(0.5)


def test_phase_disabled_is_inert():
    pc = phase_controller(enabled=False, ga_targets=(5.0, 4.0, 3.0, 2.0), lr_factors=(0.5, 0.5, 0.5, 0.5))
    s0 = pc.init()
    s = pc.update(s0, 1.0, 1.0)
    assert s is s0
    assert (float(pc.ga_target(s)), float(pc.lr_factor(s)), bool(pc.only_rise(s))) == (1.0, 1.0, False)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"align_start": -0.1}, "align_start"),
        ({"align_start": 1.0}, "align_start"),
        ({"align_done": 0.2}, "align_done"),
        ({"align_done": 1.5}, "align_done"),
        ({"patience": 0}, "patience"),
        ({"plateau_evals": 0}, "plateau_evals"),
        ({"min_delta": -0.01}, "min_delta"),
        ({"min_delta": 1.0}, "min_delta"),
        ({"ga_targets": (1.0, 1.0, 1.0)}, "ga_targets"),
        ({"ga_targets": (1.0, 1.0, 1.0, math.inf)}, "ga_targets"),
        ({"lr_factors": (1.0, 0.0, 1.0, 1.0)}, "lr_factors"),
        ({"lr_factors": 1.0}, "lr_factors"),
    ],
)
def test_phase_validation(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name} "):
        phase_controller(**kwargs)


def test_controllers_compose_under_jit():
    """The phase machine feeds the GA controller's floor and rise-only mode inside one jitted function."""
    ga = ga_weight_controller(const(1.0), interval=1, cooldown=0, ema_decay=0.0)
    pc = phase_controller(ga_targets=(3.0, 2.0, 1.5, 1.0))

    @jax.jit
    def step(g, p, diag, i):
        g = ga.update(g, diag, i, only_rise=pc.only_rise(p), target_mult=pc.ga_target(p))
        return g, ga.value(g, i)

    g, w = step(ga.init(), pc.init(), jnp.float32(0.9), 0)  # pre_alignment: floor 3, no decrease
    assert (float(g.mult), float(w)) == (3.0, 3.0)
    g, w = step(g, pc.init()._replace(phase=jnp.int32(3)), jnp.float32(0.9), 1)  # fine_tuning: may decrease
    assert float(w) == pytest.approx(2.7)


# --------------------------------------------------------------------------- the plateau rule and the schedules


@pytest.mark.parametrize(
    ("best", "value", "improved", "new_best"),
    [
        (math.inf, 5.0, True, 5.0),  # anything finite improves on nothing
        (10.0, 9.99, False, 10.0),  # 10 - 0.001 * 10 = 9.99 is the bar; equal is not below
        (10.0, 9.98, True, 9.98),
        (-10.0, -10.005, False, -10.0),  # relative to |best|: the bar is -10.01
        (-10.0, -10.02, True, -10.02),
        (10.0, math.nan, False, 10.0),
        (10.0, -math.inf, False, 10.0),
    ],
)
def test_improvement_is_relative_to_the_best(best, value, improved, new_best):
    got_improved, got_best = improvement(jnp.float32(best), jnp.float32(value), 1e-3)
    assert bool(got_improved) is improved
    assert float(got_best) == pytest.approx(new_best)


def test_schedules_hand_computed_and_validated():
    ga = guided_attention_schedule("piecewise", weight=5.0, boundaries=(10, 20), values=(2.0, 0.5))
    assert [float(ga(jnp.int32(s))) for s in (0, 9, 10, 19, 20, 1000)] == [5.0, 5.0, 2.0, 2.0, 0.5, 0.5]
    decay = guided_attention_schedule("exponential", weight=4.0, decay=0.5, floor=0.75)
    assert [float(decay(s)) for s in (0, 1, 2, 3)] == [4.0, 2.0, 1.0, 0.75]
    lr = learning_rate_schedule("warmup_exponential", lr=1e-3, warmup_steps=10, decay_steps=100, decay_rate=0.5)
    assert [float(lr(s)) for s in (0, 5, 10, 110)] == pytest.approx([0.0, 5e-4, 1e-3, 5e-4])
    with pytest.raises(ValueError, match="^boundaries "):
        guided_attention_schedule("piecewise", weight=1.0, boundaries=(10, 5), values=(1.0, 2.0))
    with pytest.raises(ValueError, match="^kind "):
        learning_rate_schedule("cosine", lr=1e-3)
    with pytest.raises(ValueError, match="^lr "):
        learning_rate_schedule("constant", lr=-1.0)
