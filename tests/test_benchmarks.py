"""The benchmark scripts' own arithmetic and a smoke run (their numbers go into benchmarks/RESULTS.md)."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_model_config

from taco_jax.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from train_step import main as train_step_main  # noqa: E402
from train_step import synthetic_batch, train_step_flops  # noqa: E402


def test_flop_estimate_matches_the_reference_spec():
    # The reference FLOP estimate for NVIDIA's hyper-parameters (shared reference flops_estimate.py) prints
    # 8.31 TFLOP per training step for B=64, 180 tokens, 870 frames; its exact value is 8,308,965,703,680.
    m = load_config("configs/nvidia_ljspeech.yaml").model
    assert train_step_flops(m, 80, 64, 180, 870) == 8_308_965_703_680


def test_synthetic_batch_lengths():
    b = synthetic_batch(4, 80, 250, 3, 148, 80)
    # N - i*N//(4B) = 80 - 5i; T rounded up to 252, then 252 - (i*252)//16
    np.testing.assert_array_equal(b.text_len, [80, 75, 70, 65])
    np.testing.assert_array_equal(b.mel_len, [252, 237, 221, 205])
    assert b.mel.shape == (4, 252, 80) and b.text.shape == (4, 80)
    assert np.all(b.text[1, 75:] == 0) and np.all(b.text[1, :75] > 0)
    assert b.gate[2, 219] == 0.0 and np.all(b.gate[2, 220:] == 1.0)


def test_train_step_benchmark_smoke(tmp_path, capsys):
    sets = [f"model.{k}={v}" for k, v in asdict(tiny_model_config()).items() if k != "n_symbols"]
    out = tmp_path / "bench.jsonl"
    argv = ["--config", "configs/demo.yaml", "--batch", "2", "--text-len", "12", "--mel-len", "18", "--steps", "2"]
    assert train_step_main(argv + [a for s in sets for a in ("--set", s)] + ["--json", str(out)]) == 0
    rec = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rec == json.loads(out.read_text())
    assert rec["backend"] == "cpu" and rec["steps_timed"] == 2 and rec["mel_len"] == 18
    assert 0 < rec["min_step_s"] <= rec["median_step_s"] and rec["compile_s"] > 0
    # valid frames (lengths 18 and 18 - 18//8) per median step; the JSON rounds the step time to 0.1 ms
    assert rec["mel_frames_per_s"] == pytest.approx((18 + 16) / rec["median_step_s"], rel=0.05)
    assert rec["peak_memory_bytes"] > 0
