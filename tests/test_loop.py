"""The host loop's parts: exact validation, metric logging by declaration, callbacks, one log line per change."""

from __future__ import annotations

import json
import logging

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import build_trainer, tiny_train_config

from taco_jax import diagnostics, losses
from taco_jax.data import build_data
from taco_jax.train import loop
from taco_jax.train.evaluation import Evaluator
from taco_jax.train.metrics_log import MetricWindow
from taco_jax.train.objective import objective_from_config
from taco_jax.train.step import StepMetrics


def _single_item_sums(model, variables, item, r: int) -> dict[str, tuple[float, float]]:
    """(sum, count) of every validation quantity for one item, from its own forward pass (numpy arithmetic)."""
    out = model.apply(variables, item.text, item.text_len, item.mel, item.mel_len, train=False)
    frames, steps = int(item.mel_len[0]), -(-int(item.mel_len[0]) // r)
    mel, n_mels = np.asarray(item.mel[0, :frames], np.float64), item.mel.shape[2]
    sums = {
        "mel_loss": (np.sum((np.asarray(out.mel[0, :frames]) - mel) ** 2), frames * n_mels),
        "mel_post_loss": (np.sum((np.asarray(out.mel_post[0, :frames]) - mel) ** 2), frames * n_mels),
    }
    x = np.asarray(out.gate[0, :steps], np.float64)
    y = np.asarray(item.gate[0, r - 1 :: r][:steps], np.float64)
    bce = -(y * np.log(1 / (1 + np.exp(-x))) + (1 - y) * np.log(1 / (1 + np.exp(x))))
    sums["gate_loss"] = (bce.sum(), steps)
    dec_len = jnp.array([steps])
    ga = losses.guided_attention_loss(out.alignments, item.text_len, dec_len, sigma=0.2)  # per_frame: / steps
    sums["ga_loss"] = (float(ga) * steps, steps)
    per_item = diagnostics.alignment_metrics(out.alignments, item.text_len, dec_len)
    per_item["gate_acc"] = diagnostics.gate_accuracy(out.gate, item.gate[:, r - 1 :: r], dec_len)
    per_item["stop_frame_error"] = diagnostics.stop_frame_error(out.gate, dec_len) * r
    sums |= {k: (float(v), 1) for k, v in per_item.items()}
    return sums


def test_evaluator_equals_a_plain_loop_over_the_items_one_at_a_time(tiny_corpus, tmp_path):
    cfg = tiny_train_config(tiny_corpus, tmp_path)
    data = build_data(cfg, progress=False)
    n_real = [n for _, n in data.val_batches]
    assert any(n < batch.text.shape[0] for batch, n in data.val_batches)  # some rows pad a bucket's last batch
    model, state, _ = build_trainer(cfg, len(data.table))
    variables = {"params": state.params, "batch_stats": state.batch_stats}
    got = Evaluator(objective_from_config(cfg, model), data.val_batches)(state.params, state.batch_stats)

    totals: dict[str, list[float]] = {}
    for batch, n in data.val_batches:
        for i in range(n):  # each real item alone, at its bucket's shape
            item = jax.tree.map(lambda x, i=i: x[i : i + 1], batch)
            for k, (s, c) in _single_item_sums(model, variables, item, cfg.model.n_frames_per_step).items():
                totals.setdefault(k, [0.0, 0.0])
                totals[k][0] += s
                totals[k][1] += c
    assert totals["align_diag"][1] == sum(n_real) == 6
    expected = {f"val/{k}": s / c for k, (s, c) in totals.items()}
    expected["val/loss"] = expected["val/mel_loss"] + expected["val/mel_post_loss"] + expected["val/gate_loss"]
    assert set(expected) <= set(got)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=2e-5, abs=1e-6), k


def _metrics(loss: float, mult: float) -> StepMetrics:
    states = {"train/ga_mult": jnp.float32(mult), "train/ga_level": jnp.int32(1), "train/ga_ema_diag": jnp.float32(0.1)}
    return StepMetrics({"train/loss": jnp.float32(loss)}, states)


def test_window_averages_means_and_logs_states_as_they_stand(caplog):
    window = MetricWindow()
    for loss, mult in [(1.0, 1.0), (float("nan"), 3.0), (4.0, 7.5)]:
        window.add(_metrics(loss, mult), step_s=0.5, frames=100)
    with caplog.at_level(logging.INFO, logger="taco_jax"):
        logged = window.flush(step=3)
    assert logged["train/loss"] == 2.5  # mean of the finite values
    assert logged["train/ga_mult"] == 7.5  # the value at step 3, not the window's mean
    assert logged["perf/mel_frames_per_s"] == 200.0
    changes = [r.getMessage() for r in caplog.records if "multiplier" in r.getMessage()]
    assert changes == [
        "step 2: guided-attention multiplier 1 -> 3 (level 1, EMA diagonality 0.100)",
        "step 3: guided-attention multiplier 3 -> 7.5 (level 1, EMA diagonality 0.100)",
    ]


def test_every_state_value_is_declared_by_the_controllers(tiny_corpus, tmp_path):
    cfg = tiny_train_config(tiny_corpus, tmp_path, "control.ga_weight.enabled=true", "control.clip.enabled=true")
    data = build_data(cfg, progress=False)
    _, state, step = build_trainer(cfg, len(data.table))
    _, metrics = step(state, next(data.train_loader))
    assert not set(metrics.means) & set(metrics.states)
    # The EMA of the loss balance is controller state: logged as it stands, never window-averaged.
    assert {"train/ga_balance", "train/ga_mult", "train/phase", "train/lr", "train/clip_threshold"} <= set(
        metrics.states
    )
    assert {"train/loss", "train/grad_norm", "train/align_diag", "train/ga_loss"} <= set(metrics.means)


def test_callbacks_see_log_and_eval_metrics_and_can_stop(tiny_corpus, tmp_path, caplog):
    seen: list[tuple[int, str]] = []

    def record(step, metrics):
        seen.append((step, "val" if "val/loss" in metrics else "train"))

    def stop_after_first_eval(step, metrics):
        return "val/loss" in metrics

    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=8", "run.log_every=1", "run.eval_every=2",
                            "control.phase.enabled=true", "control.phase.align_start=0.0",
                            "control.phase.patience=1")  # fmt: skip
    with caplog.at_level(logging.INFO, logger="taco_jax"):
        result = loop.train(cfg, callbacks=[record, stop_after_first_eval])
    assert result.stop_reason == "callback" and result.step == 2
    assert seen == [(1, "train"), (2, "train"), (2, "val")]
    final = json.load(open(f"{result.run_dir}/final_metrics.json"))
    assert final["stop_reason"] == "callback"
    phase_lines = [r for r in caplog.records if "phase pre_alignment -> alignment_learning" in r.getMessage()]
    assert len(phase_lines) == 1  # one line per change, at the evaluation that caused it


def test_a_new_run_never_reuses_a_deleted_runs_number(tmp_path, monkeypatch):
    from taco_jax.config import load_config
    from taco_jax.train import run_dir

    cfg = load_config(None, [f"run.out_dir={tmp_path}", "run.name=g"])
    for name in ("g", "g-3"):  # g-2 was deleted
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.yaml").write_text(name)
    assert run_dir.create_run_dir(cfg) == tmp_path / "g-4"
    assert run_dir.choose_run_dir(cfg, resume=True) == tmp_path / "g-4"

    # Another process creates the chosen directory between the choice and the mkdir: this run takes the next.
    real_choose = run_dir.choose_run_dir
    calls = []

    def racing_choose(cfg, resume):
        chosen = real_choose(cfg, resume)
        if not calls:
            chosen.mkdir()
            (chosen / "config.yaml").write_text("the other run's")
        calls.append(chosen)
        return chosen

    monkeypatch.setattr(run_dir, "choose_run_dir", racing_choose)
    assert run_dir.create_run_dir(cfg) == tmp_path / "g-6"
    assert (tmp_path / "g-5" / "config.yaml").read_text() == "the other run's"
    assert (tmp_path / "g-3" / "config.yaml").read_text() == "g-3"
