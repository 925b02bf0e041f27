"""Training: one step of the full NVIDIA model, exact resume, compile counts, checkpoints and synthesis."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import build_trainer, random_batch, tiny_train_config

from taco_jax.checkpoint import CheckpointError, restore_model
from taco_jax.config import load_config
from taco_jax.text import get_symbol_table
from taco_jax.train.loop import train
from taco_jax.train.state import count_params


@pytest.mark.slow
def test_nvidia_config_builds_full_model_and_steps():
    cfg = load_config("configs/nvidia_ljspeech.yaml")
    table = get_symbol_table(cfg.text.symbols)
    assert len(table) == 148
    _, state, step = build_trainer(cfg, len(table))
    assert 28.1e6 < count_params(state.params) < 28.3e6  # NVIDIA's published 28,193,153 (+ its 4 BN scales)
    before = jax.tree.map(np.array, state.params)
    state, metrics = step(state, random_batch(0, [12, 11], [20, 19], len(table)))
    assert np.isfinite(float(metrics.means["train/loss"])) and float(metrics.means["train/grad_norm"]) > 0
    moved = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - b).max()), state.params, before)
    assert min(jax.tree.leaves(moved)) > 0  # every parameter received an update
    assert int(state.step) == 1


def test_resume_is_bitwise_exact(tiny_corpus, tmp_path):
    full = train(tiny_train_config(tiny_corpus, tmp_path / "a", "run.max_steps=6", "run.eval_every=3"))
    first = train(tiny_train_config(tiny_corpus, tmp_path / "b", "run.max_steps=3", "run.eval_every=3"))
    assert first.step == 3
    resumed = train(tiny_train_config(tiny_corpus, tmp_path / "b", "run.max_steps=6", "run.eval_every=3"), resume=True)
    assert resumed.run_dir == first.run_dir and resumed.step == 6
    for a, b in zip(jax.tree.leaves(full.state), jax.tree.leaves(resumed.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_epoch_compiles_one_program_per_bucket_plus_eval(tiny_corpus, tmp_path):
    cfg = tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=8", "run.eval_every=4", "run.log_every=4",
                            "run.sample_sentences=[Hello there.]")  # fmt: skip
    result = train(cfg)
    records = [json.loads(x) for x in open(f"{result.run_dir}/metrics.jsonl")]
    compiles = max(r["perf/compiles"] for r in records if "perf/compiles" in r)
    n_buckets = len(cfg.data.buckets)
    assert compiles <= 2 * n_buckets + 1  # train per bucket + eval per bucket + one inference program
    assert {"train/loss", "train/grad_norm", "train/lr", "perf/step_s"} <= set(records[0])
    val = [r for r in records if "val/loss" in r][-1]
    expected = {"val/align_diag", "val/align_focus", "val/align_monotonic", "val/align_coverage", "val/gate_acc"}
    assert expected <= set(val)
    assert list((Path(result.run_dir) / "samples").glob("*.wav"))


def test_restore_model_and_unreadable_checkpoint(tiny_corpus, tmp_path):
    result = train(tiny_train_config(tiny_corpus, tmp_path, "run.max_steps=2", "run.eval_every=2"))
    cfg, model, variables = restore_model(result.run_dir)
    assert cfg.model.decoder_rnn_dim == 48
    text = jnp.ones((1, 5), jnp.int32)
    out = model.apply(variables, text, jnp.array([5]), jnp.zeros((1, 6, 80)), jnp.array([6]))
    assert out.alignments.shape == (1, 2, 5)
    bad = tmp_path / "garbage"
    (bad / "checkpoints" / "7" / "state").mkdir(parents=True)
    (bad / "checkpoints" / "7" / "state" / "junk").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match="garbage"):
        restore_model(bad)
    with pytest.raises(CheckpointError, match="no such"):
        restore_model(tmp_path / "missing")
