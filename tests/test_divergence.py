"""The divergence alarm (taco_jax/train/divergence.py): healthy noisy training never flags, finite blow-ups of the
loss or the gradient norm do, non-finite values are ignored, streaks, exact state round trip, config errors. (A
real blow-up of the tiny model at optim.lr=1e6, in the loop: tests/test_control_train.py.)"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from taco_jax.config import Config, ConfigError, DivergenceConfig, load_config
from taco_jax.train.divergence import AlarmState, DivergenceAlarm

N_SYMBOLS = 40


def healthy_curve(seed: int, n_steps: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    """(loss, grad_norm) of a Tacotron-like run: the loss falls from ~60 at step 1 (~14 by step 15) to ~0.5, with
    10% log-normal noise and 2-3x spikes on 2% of the steps; the gradient norm falls from ~8 to ~0.5 with 30% noise
    and 10-50x spikes on 5% of the first 500 steps (2-10x on 1% later)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_steps, dtype=np.float64)
    loss = (0.4 + 9.6 * np.exp(-t / 600) + 50 * np.exp(-t / 6)) * np.exp(rng.normal(0.0, 0.1, n_steps))
    spikes = rng.random(n_steps) < 0.02
    loss[spikes] *= rng.uniform(2.0, 3.0, spikes.sum())
    grad_norm = (0.5 + 8 * np.exp(-t / 500)) * np.exp(rng.normal(0.0, 0.3, n_steps))
    early = t < 500
    big = early & (rng.random(n_steps) < 0.05)
    grad_norm[big] *= rng.uniform(10.0, 50.0, big.sum())
    small = ~early & (rng.random(n_steps) < 0.01)
    grad_norm[small] *= rng.uniform(2.0, 10.0, small.sum())
    return loss, grad_norm


def feed(alarm: DivergenceAlarm, losses, grad_norms, first_step: int = 1) -> list[str | None]:
    return [alarm.check(first_step + i, lo, g) for i, (lo, g) in enumerate(zip(losses, grad_norms, strict=True))]


def warmed_up(n_steps: int = 50, **changes) -> DivergenceAlarm:
    """An alarm that has accepted `n_steps` of a healthy curve (loss ~2, grad norm ~1)."""
    alarm = DivergenceAlarm(DivergenceConfig(**changes))
    rng = np.random.default_rng(0)
    assert not any(feed(alarm, 2.0 + 0.2 * rng.random(n_steps), 1.0 + 0.5 * rng.random(n_steps)))
    return alarm


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_healthy_noisy_training_never_flags(seed):
    loss, grad_norm = healthy_curve(seed)
    assert loss[0] > 55 and loss.min() < 0.6 and grad_norm.max() / np.median(grad_norm[:500]) > 10
    alarm = DivergenceAlarm(DivergenceConfig())
    reasons = [r for r in feed(alarm, loss, grad_norm) if r is not None]
    assert reasons == [] and alarm.consecutive == 0
    assert len(alarm.state.losses) == len(alarm.state.grad_norms) == 50  # bounded windows


def test_finite_loss_blow_up_is_flagged_naming_the_values():
    alarm = warmed_up()
    median = float(np.median(alarm.state.losses))
    reason = alarm.check(51, 3.2e16, 1.0)
    assert reason is not None and reason.startswith("step 51: loss 3.2e+16 is ")
    assert f"the median {median:.3g} of the last 50 accepted steps" in reason
    assert f"{3.2e16 / median:.3g} x" in reason and "control.divergence.loss_factor 100" in reason
    assert "grad norm" not in reason and alarm.consecutive == 1


def test_loss_just_below_the_factor_is_accepted_and_above_is_flagged():
    alarm = DivergenceAlarm(DivergenceConfig(), AlarmState(losses=[2.0, 2.0, 2.0], grad_norms=[1.0, 1.0, 1.0]))
    assert alarm.check(4, 199.0, 1.0) is None  # 99.5x: accepted (and enters the window)
    assert alarm.state.losses == [2.0, 2.0, 2.0, 199.0]
    assert alarm.check(5, 201.0, 1.0) is not None  # > 100 x the median 2.0


def test_grad_norm_blow_up_is_flagged_with_a_normal_loss():
    alarm = warmed_up()
    reason = alarm.check(51, 2.1, 5e4)
    assert reason is not None and "grad norm 5e+04 is " in reason and "grad_norm_factor 1000" in reason
    assert "loss" not in reason.split(";")[0].replace("grad norm", "")
    both = alarm.check(52, 1e6, 1e9)
    assert both is not None and "loss 1e+06" in both and "; grad norm 1e+09" in both and "2 in a row" in both


def test_blow_up_from_the_first_update_is_caught_at_step_two():
    alarm = DivergenceAlarm(DivergenceConfig())
    assert alarm.check(1, 62.0, 8.0) is None  # the initial parameters' loss: the reference
    reason = alarm.check(2, 2.6e14, 2.7e12)
    assert reason is not None and "the median 62 of the last 1 accepted step (" in reason


def test_min_history_waits_for_enough_values():
    alarm = DivergenceAlarm(DivergenceConfig(min_history=3))
    assert feed(alarm, [62.0, 1e9, 1e9], [8.0, 8.0, 8.0]) == [None, None, None]  # judged from the 4th value on
    assert alarm.check(4, 1e12, 8.0) is not None


def test_nonfinite_values_are_ignored():
    alarm = warmed_up(max_consecutive=3)
    alarm.check(51, 1e9, 1.0)
    before = json.dumps(alarm.to_dict())
    for loss, grad_norm in [(math.nan, math.nan), (math.inf, 1.0), (-math.inf, math.nan), (math.nan, 1e9)]:
        assert alarm.check(52, loss, grad_norm) is None
    assert json.dumps(alarm.to_dict()) == before and alarm.consecutive == 1  # the streak is neither cut nor extended
    # A finite loss with a non-finite gradient norm: the loss is judged and kept, the norm left out.
    assert alarm.check(53, 2.0, math.inf) is None
    assert alarm.consecutive == 0 and alarm.state.losses[-1] == 2.0 and math.isfinite(alarm.state.grad_norms[-1])
    assert alarm.check(54, 1e9, math.nan) is not None  # a huge finite loss is still flagged


def test_streak_counts_flagged_steps_in_a_row_and_resets():
    alarm = warmed_up(max_consecutive=3)
    window = list(alarm.state.losses)
    assert [alarm.check(s, 1e9, 1.0) is not None for s in (51, 52)] == [True, True]
    assert alarm.consecutive == 2 and not alarm.should_roll_back()
    assert alarm.check(53, 2.0, 1.0) is None and alarm.consecutive == 0  # back in range: the streak ends
    assert all(alarm.check(s, 1e9, 1.0) is not None for s in (54, 55, 56))
    assert alarm.consecutive == 3 and alarm.should_roll_back()
    assert 1e9 not in alarm.state.losses and alarm.state.losses == [*window, 2.0][-50:]  # flagged values never enter
    alarm.reset_streak()
    assert alarm.consecutive == 0 and not alarm.should_roll_back() and alarm.state.losses == [*window, 2.0][-50:]


def test_disabled_alarm_never_flags_and_keeps_nothing():
    alarm = DivergenceAlarm(DivergenceConfig(enabled=False, max_consecutive=1))
    assert feed(alarm, [62.0, 1e16, 1e16], [8.0, 1e12, 1e12]) == [None, None, None]
    assert alarm.to_dict() == {"losses": [], "grad_norms": [], "consecutive": 0} and not alarm.should_roll_back()


def test_state_round_trips_through_json_and_continues_identically():
    cfg = DivergenceConfig(window=20, max_consecutive=2)
    loss, grad_norm = healthy_curve(5, 300)
    loss[[100, 101, 102, 250]] = [1e10, 3e12, 5.0, 7e15]  # flagged steps on both sides of the save
    grad_norm = grad_norm.astype(np.float32)  # device values come as float32
    whole = DivergenceAlarm(cfg)
    expected = feed(whole, loss, grad_norm)
    first = DivergenceAlarm(cfg)
    head = feed(first, loss[:101], grad_norm[:101])
    assert first.consecutive == 1 and len(first.state.losses) == 20
    saved = json.loads(json.dumps(first.to_dict()))  # checkpoint metadata is JSON
    resumed = DivergenceAlarm.from_dict(cfg, saved)
    tail = feed(resumed, loss[101:], grad_norm[101:], first_step=102)
    assert head + tail == expected and resumed.to_dict() == whole.to_dict()
    assert sum(r is not None for r in expected) == 3


def test_from_dict_accepts_missing_keys_and_a_smaller_window():
    assert DivergenceAlarm.from_dict(DivergenceConfig(), {}).to_dict() == AlarmState().__dict__
    alarm = DivergenceAlarm.from_dict(
        DivergenceConfig(window=3), {"losses": [1.0, 2.0, 3.0, 4.0], "grad_norms": [5.0], "consecutive": 2}
    )
    assert alarm.state == AlarmState(losses=[2.0, 3.0, 4.0], grad_norms=[5.0], consecutive=2)


def test_defaults_and_config_keys():
    cfg = Config().control.divergence
    assert (cfg.enabled, cfg.loss_factor, cfg.grad_norm_factor) == (True, 100.0, 1000.0)
    assert (cfg.window, cfg.min_history, cfg.max_consecutive) == (50, 1, 3)
    loaded = load_config("configs/demo.yaml", ["control.divergence.loss_factor=30", "control.divergence.window=20"])
    assert loaded.control.divergence.loss_factor == 30.0 and loaded.control.divergence.window == 20


@pytest.mark.parametrize(
    "override, key",
    [
        ("control.divergence.loss_factor=1.0", "loss_factor"),
        ("control.divergence.grad_norm_factor=0.5", "grad_norm_factor"),
        ("control.divergence.window=0", "window"),
        ("control.divergence.min_history=0", "min_history"),
        ("control.divergence.min_history=51", "min_history"),
        ("control.divergence.max_consecutive=0", "max_consecutive"),
    ],
)
def test_invalid_settings_name_the_key(override, key):
    with pytest.raises(ConfigError, match=rf"--set override: config key 'control\.divergence\.{key}'"):
        load_config(None, [override])
    with pytest.raises(ConfigError, match=rf"DivergenceAlarm: config key 'control\.divergence\.{key}'"):
        field, value = override.removeprefix("control.divergence.").split("=")
        DivergenceAlarm(DivergenceConfig(**{field: type(getattr(DivergenceConfig(), field))(value)}))


def test_invalid_setting_in_a_file_names_key_and_file(tmp_path):
    f = tmp_path / "div.yaml"
    f.write_text("control:\n  divergence:\n    window: 10\n    min_history: 20\n")
    with pytest.raises(ConfigError, match=r"div\.yaml.*'control\.divergence\.min_history' = 20"):
        load_config(str(f))
