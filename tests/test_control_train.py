"""Controllers inside the train step and the host loop: exact plain recipe when off, non-finite guard,
rollback, early stopping, exact resume of controller trajectories, compile counts."""

from __future__ import annotations

import json
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from conftest import random_batch, tiny_model_config, tiny_train_config

from taco_jax import diagnostics, losses
from taco_jax.batch import Batch
from taco_jax.config import Config, ConfigError, load_config
from taco_jax.control import optim as optim_control
from taco_jax.model import build_model
from taco_jax.train import loop
from taco_jax.train.controllers import build_controllers, ga_schedule
from taco_jax.train.objective import objective_from_config
from taco_jax.train.state import create_train_state
from taco_jax.train.step import jit_train_step

N_SYMBOLS = 40


def _batch(seed: int, nan: bool = False) -> Batch:
    return random_batch(seed, [7, 5], [12, 9], N_SYMBOLS, nan=nan)


def _config(guard: bool) -> Config:
    cfg = Config()
    cfg.model = tiny_model_config()
    cfg.control.nonfinite.enabled = guard
    return cfg


def _build(cfg: Config):
    """(model, state, compiled train step) as the trainer builds them."""
    model = build_model(cfg.model, N_SYMBOLS)
    controllers = build_controllers(cfg)
    state = create_train_state(model, controllers.tx, 0, 80, controllers.init())
    return model, state, jit_train_step(objective_from_config(cfg, model), controllers)


def _reference_steps(cfg: Config, n_steps: int):
    """The plain recipe written out with no controller code: NVIDIA's chain in optax, constant LR and GA weight."""
    model = build_model(cfg.model, N_SYMBOLS)
    o, lc, r = cfg.optim, cfg.loss, cfg.model.n_frames_per_step
    tx = optax.chain(
        optax.clip_by_global_norm(o.grad_clip), optax.add_decayed_weights(o.weight_decay),
        optax.scale_by_adam(b1=o.adam_b1, b2=o.adam_b2, eps=o.adam_eps), optax.scale_by_learning_rate(o.lr),
    )  # fmt: skip

    def loss_fn(params, batch_stats, batch: Batch, rng, ga_weight):
        outputs, new_vars = model.apply(
            {"params": params, "batch_stats": batch_stats},
            batch.text, batch.text_len, batch.mel, batch.mel_len,
            train=True, rngs={"dropout": rng}, mutable=["batch_stats"],
        )  # fmt: skip
        weights = losses.LossWeights(mel=lc.mel_weight, gate=lc.gate_weight, guided_attention=ga_weight)
        total, terms = losses.tacotron2_loss(
            outputs, mel=batch.mel, mel_len=batch.mel_len, gate=batch.gate, text_len=batch.text_len, r=r,
            weights=weights, gate_pos_weight=lc.gate_pos_weight, ga_sigma=lc.guided_attention.sigma,
        )  # fmt: skip
        return total, (terms, new_vars["batch_stats"], outputs)

    @jax.jit
    def train_step(state, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step)
        ga_weight = jnp.float32(lc.guided_attention.weight)
        (_, (terms, batch_stats, outputs)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.batch_stats, batch, rng, ga_weight
        )
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        # Reported like the trainer's metrics: they change no number, but XLA compiles them into the same program.
        metrics = {**terms, "grad_norm": optax.tree.norm(grads)}
        dec_len = losses.decoder_lengths(batch.mel_len, r=r)
        metrics |= diagnostics.alignment_metrics(outputs.alignments, batch.text_len, dec_len)
        new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats, opt_state=opt_state)
        return new_state, metrics

    state = create_train_state(model, tx, 0, 80, None)
    for i in range(n_steps):
        state, _ = train_step(state, _batch(i))
    return state.params, state.batch_stats


@pytest.mark.parametrize("guard", [False, True])
def test_controllers_off_is_exactly_the_plain_recipe(guard):
    cfg = _config(guard)
    _, state, step = _build(cfg)
    for i in range(3):
        state, metrics = step(state, _batch(i))
    ref_params, ref_stats = _reference_steps(cfg, 3)
    ours = jax.tree_util.tree_leaves_with_path((state.params, state.batch_stats))
    for (path, a), b in zip(ours, jax.tree.leaves((ref_params, ref_stats)), strict=True):
        if not guard:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        elif path[0].idx == 0 and "['conv']['bias']" not in jax.tree_util.keystr(path):
            # The guard's selects change how XLA fuses the step, not its arithmetic: rounding differs by ulps,
            # and where a gradient is tiny Adam turns those ulps into a sizeable part of a step (seen: 1.9e-5 in
            # one of 12288 entries). 0.1 x lr bounds that; the unguarded case above is checked bitwise.
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=0.1 * cfg.optim.lr)
        # (With the guard, the conv biases in front of BatchNorm are left out: their true gradient is exactly
        # zero, what remains is rounding noise, and Adam normalizes noise into full-size steps; the BatchNorm
        # running means follow those biases.)
    states = metrics.states
    assert float(states["train/ga_weight"]) == 1.0 and float(states["train/clip_threshold"]) == 1.0
    assert float(states["train/lr"]) == pytest.approx(1e-3) and int(states["train/phase"]) == 0


def test_nonfinite_batch_changes_nothing_but_the_counters():
    cfg = _config(guard=True)
    _, state, step = _build(cfg)
    state, _ = step(state, _batch(0))
    before = jax.device_get(state)
    state, metrics = step(state, _batch(1, nan=True))
    after = jax.device_get(state)
    assert not np.isfinite(float(metrics.means["train/loss"]))
    assert int(metrics.states["train/nonfinite"]) == 1 and int(metrics.states["train/nonfinite_consecutive"]) == 1
    for name in ("params", "batch_stats", "control"):
        for a, b in zip(jax.tree.leaves(getattr(before, name)), jax.tree.leaves(getattr(after, name)), strict=True):
            np.testing.assert_array_equal(a, b)
    for field in ("mu", "nu", "count"):  # Adam's moments and step count
        old = [v for _, v in optax.tree.get_all_with_path(before.opt_state, field)]
        new = [v for _, v in optax.tree.get_all_with_path(after.opt_state, field)]
        assert old, field
        for a, b in zip(jax.tree.leaves(old), jax.tree.leaves(new), strict=True):
            np.testing.assert_array_equal(a, b)
    assert float(optim_control.lr_scale(after.opt_state)) == 0.5  # control.nonfinite.lr_factor
    state, metrics = step(state, _batch(2))  # the next finite batch trains again
    assert int(metrics.states["train/nonfinite_consecutive"]) == 0
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_piecewise_ga_schedule_and_its_validation():
    cfg = load_config(
        None,
        [
            "loss.guided_attention.schedule=piecewise",
            "loss.guided_attention.weight=5.0",
            "loss.guided_attention.boundaries=[10,20]",
            "loss.guided_attention.values=[2.0,0.5]",
        ],
    )
    schedule = ga_schedule(cfg)
    assert [float(schedule(jnp.int32(s))) for s in (0, 9, 10, 19, 20, 1000)] == [5.0, 5.0, 2.0, 2.0, 0.5, 0.5]
    with pytest.raises(ConfigError, match="boundaries"):
        load_config(None, ["loss.guided_attention.boundaries=[10,5]", "loss.guided_attention.values=[1,2]"])
    with pytest.raises(ConfigError, match="control.ga_weight"):  # the factory's error, naming the config section
        build_controllers(load_config(None, ["control.ga_weight.enabled=true", "control.ga_weight.interval=0"]))


class _FaultyLoader:
    """Wraps the train loader; the batches at the given call indices (0-based) get a NaN in their mel."""

    def __init__(self, loader, nan_calls):
        self.loader, self.nan_calls, self.calls = loader, set(nan_calls), 0

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def __iter__(self):
        return self

    def __next__(self):
        batch = next(self.loader)
        if self.calls in self.nan_calls:
            mel = np.array(batch.mel)
            mel[0, 0, 0] = np.nan
            batch = batch._replace(mel=mel)
        self.calls += 1
        return batch


def _inject_faults(monkeypatch, nan_calls):
    real = loop.build_data

    def build_data(cfg, progress=True):
        bundle = real(cfg, progress)
        bundle.train_loader = _FaultyLoader(bundle.train_loader, nan_calls)
        return bundle

    monkeypatch.setattr(loop, "build_data", build_data)


def _records(run_dir):
    return [json.loads(x) for x in open(f"{run_dir}/metrics.jsonl")]


def test_separate_nonfinite_batches_are_skipped(tiny_corpus, tmp_path, monkeypatch):
    _inject_faults(monkeypatch, {1, 4, 6})
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=8", "run.log_every=1", "run.eval_every=8",
                            "control.nonfinite.max_consecutive=2")  # fmt: skip
    result = loop.train(cfg)
    assert result.step == 8
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(result.state.params))
    last = [r for r in _records(result.run_dir) if "train/nonfinite" in r][-1]
    assert last["train/nonfinite"] == 3 and last["train/rollbacks"] == 0


def test_consecutive_nonfinite_batches_roll_back_once(tiny_corpus, tmp_path, monkeypatch, caplog):
    _inject_faults(monkeypatch, {4, 5})  # steps 5 and 6; the last checkpoint is step 4's
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=8", "run.log_every=1", "run.eval_every=2",
                            "control.nonfinite.max_consecutive=2")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="taco_jax"):
        result = loop.train(cfg)
    assert result.step == 8
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(result.state.params))
    assert "rollback 1/3 to checkpoint step 4" in caplog.text
    records = [r for r in _records(result.run_dir) if "train/rollbacks" in r]
    assert records[-1]["train/rollbacks"] == 1
    # The rejected steps halved the LR scale twice; the rollback restored step 4's (1.0) and halved it once.
    assert records[-1]["train/lr_scale"] == 0.5


def test_each_rollback_lowers_the_learning_rate_further(tiny_corpus, tmp_path, monkeypatch, caplog):
    _inject_faults(monkeypatch, {4, 5, 6, 7})  # steps 5 and 6 fail twice over; the last checkpoint is step 4's
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=8", "run.log_every=1", "run.eval_every=2",
                            "control.nonfinite.max_consecutive=2")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="taco_jax"):
        result = loop.train(cfg)
    assert result.step == 8
    assert "rollback 1/3 to checkpoint step 4, LR scale 1 -> 0.5" in caplog.text
    assert "rollback 2/3 to checkpoint step 4, LR scale 1 -> 0.25" in caplog.text  # not 1 -> 0.5 again
    assert [r for r in _records(result.run_dir) if "train/lr_scale" in r][-1]["train/lr_scale"] == 0.25


def test_rollbacks_are_bounded(tiny_corpus, tmp_path, monkeypatch):
    _inject_faults(monkeypatch, set(range(100)))
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=20", "control.nonfinite.max_consecutive=1",
                            "control.nonfinite.max_rollbacks=2")  # fmt: skip
    with pytest.raises(loop.TrainingDiverged, match="after 2 rollbacks"):
        loop.train(cfg)


def test_finite_blow_up_rolls_back_then_stops_with_one_clear_error(tiny_corpus, tmp_path, caplog):
    """optim.lr=1e6: the loss stays finite (the non-finite guard never acts) but explodes from step 2; the
    divergence alarm rolls back, and no checkpoint of a flagged state is ever written."""
    cfg = tiny_train_config(tiny_corpus, tmp_path, "optim.lr=1e6", "run.max_steps=20", "run.eval_every=2",
                            "control.nonfinite.max_rollbacks=2")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="taco_jax"), pytest.raises(loop.TrainingDiverged) as info:
        loop.train(cfg)
    assert re.fullmatch(r"step \d+: 3 consecutive exploding steps \(control\.divergence\) after 2 rollbacks "
                        r"\(control\.nonfinite\.max_rollbacks\); lower optim\.lr or optim\.grad_clip\. "
                        r"Last checkpoint: none in .*", str(info.value)), str(info.value)  # fmt: skip
    assert "divergence alarm: step 2: loss" in caplog.text
    assert "rollback 2/2 to the starting state (step 0), LR scale 1 -> 0.25" in caplog.text
    assert "step 2: no checkpoint, the divergence alarm flagged the last step" in caplog.text


ALL_ON = (
    "control.ga_weight.enabled=true", "control.ga_weight.interval=1", "control.ga_weight.cooldown=1",
    "control.ga_weight.raise_thresholds=[0.05,0.1,0.9]", "control.ga_weight.decrease_threshold=0.95",  # moves
    "control.clip.enabled=true", "control.clip.min_history=2", "control.clip.window=4", "control.clip.max=10.0",
    "control.lr_plateau.enabled=true", "control.lr_plateau.accumulation=1", "control.lr_plateau.patience=1",
    "control.phase.enabled=true", "control.phase.patience=1", "control.phase.align_start=0.0",
    "control.early_stopping.enabled=true", "control.early_stopping.patience=100",
)  # fmt: skip


def test_all_controllers_resume_bitwise_and_compile_once_per_bucket(tiny_corpus, tmp_path):
    def cfg(d, steps):
        return tiny_train_config(tiny_corpus, tmp_path / d, f"run.max_steps={steps}", "run.eval_every=3",
                                 "run.log_every=1", *ALL_ON)  # fmt: skip

    full = loop.train(cfg("a", 6))
    loop.train(cfg("b", 3))
    resumed = loop.train(cfg("b", 6), resume=True)
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    records = _records(full.run_dir)
    mults = [r["train/ga_mult"] for r in records if "train/ga_mult" in r]
    assert len(set(mults)) > 1  # the GA controller acted, and its trajectory was resumed exactly
    train_records = [r for r in records if "train/phase" in r]
    assert train_records[-1]["train/phase"] >= 1  # phase advanced at the first evaluation (align_start 0)
    assert len({r["train/clip_threshold"] for r in train_records}) > 1  # the adaptive clip moved
    compiles = max(r["perf/compiles"] for r in records if "perf/compiles" in r)
    assert compiles <= 2 * 2 + 1  # 2 buckets: train + eval per bucket, one inference program


def test_early_stopping_reports_reason_and_best_checkpoint(tiny_corpus, tmp_path, caplog):
    # min_delta 0.99: after the first evaluation nothing counts as an improvement; patience 2 evaluations.
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=10", "run.eval_every=1", "run.log_every=1",
                            "control.early_stopping.enabled=true", "control.early_stopping.patience=2",
                            "control.early_stopping.min_delta=0.99", "control.phase.align_start=0.0")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="taco_jax"):
        result = loop.train(cfg)
    assert result.stop_reason == "early_stopping" and result.step == 3
    val = {r["step"]: r["val/loss"] for r in _records(result.run_dir) if "val/loss" in r}
    best = min((s for s in val if s < 3), key=val.get)  # the best checkpoint saved before the decision
    assert "early stopping: val/loss has not improved" in caplog.text
    assert f"best checkpoint: step {best} " in caplog.text
    final = json.load(open(f"{result.run_dir}/final_metrics.json"))
    assert final["stop_reason"] == "early_stopping" and final["step"] == 3


def test_no_early_stopping_before_alignment(tiny_corpus, tmp_path):
    # Same plateau, but val diagonality of an untrained tiny model stays below align_start: pre-alignment.
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=4", "run.eval_every=1", "run.log_every=1",
                            "control.early_stopping.enabled=true", "control.early_stopping.patience=1",
                            "control.early_stopping.min_delta=0.99", "control.phase.align_start=0.99",
                            "control.phase.align_done=1.0")  # fmt: skip
    result = loop.train(cfg)
    assert result.stop_reason == "max_steps" and result.step == 4
