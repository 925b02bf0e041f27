"""The benchmark scripts' own arithmetic and a smoke run (their numbers go into benchmarks/RESULTS.md)."""

import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from conftest import import_torch, tiny_model_config

from taco_jax.config import load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from train_step import main as train_step_main  # noqa: E402
from train_step import synthetic_batch, train_step_flops  # noqa: E402

TINY_SETS = [f"model.{k}={v}" for k, v in asdict(tiny_model_config()).items() if k != "n_symbols"]


def set_args(overrides) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def last_json_line(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


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
    out = tmp_path / "bench.jsonl"
    argv = ["--config", "configs/demo.yaml", "--batch", "2", "--text-len", "12", "--mel-len", "18", "--steps", "2"]
    assert train_step_main(argv + set_args(TINY_SETS) + ["--json", str(out)]) == 0
    rec = last_json_line(capsys)
    assert rec == json.loads(out.read_text())
    assert rec["backend"] == "cpu" and rec["steps_timed"] == 2 and rec["mel_len"] == 18
    assert 0 < rec["min_step_s"] <= rec["median_step_s"] and rec["compile_s"] > 0
    # valid frames (lengths 18 and 18 - 18//8) per median step; the JSON rounds the step time to 1 us
    assert rec["mel_frames_per_s"] == pytest.approx((18 + 16) / rec["median_step_s"], rel=0.01)
    assert rec["peak_memory_bytes"] > 0


def test_compare_torch_smoke(capsys):
    import_torch()
    from compare_torch import main as compare_main

    argv = ["--config", "configs/demo.yaml", "--batch", "2", "--text-len", "12", "--mel-len", "18", "--steps", "2"]
    assert compare_main(argv + set_args(TINY_SETS) + ["--threads", "1"]) == 0
    rec = last_json_line(capsys)
    assert rec["torch_threads"] == 1 and rec["steps_timed"] == 2 and rec["mel_len"] == 18
    for side in ("taco_jax", "torch"):
        assert 0 < rec[f"{side}_min_step_s"] <= rec[f"{side}_median_step_s"]
        assert np.isfinite(rec["last_loss"][side]) and rec["last_loss"][side] > 0
    assert rec["speedup"] == pytest.approx(rec["torch_median_step_s"] / rec["taco_jax_median_step_s"], rel=0.02)


def test_inference_benchmark_smoke(capsys):
    import_torch()
    from inference import main as inference_main

    sets = [o for o in TINY_SETS if not o.startswith(("model.max_decoder_steps", "model.gate_threshold"))]
    argv = ["--config", "configs/demo.yaml", "--frames", "20", "--text-len", "7", "--batch-sizes", "1", "2"]
    assert inference_main(argv + ["--repeats", "2", "--compare-torch", "--threads", "1"] + set_args(sets)) == 0
    recs = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[-2:]]
    assert [r["batch"] for r in recs] == [1, 2]
    audio_s = 21 * 256 / 22050  # 20 frames rounded up to r = 3: 21 frames of hop 256 at 22.05 kHz
    for r in recs:
        assert r["frames"] == 21 and r["audio_s_per_item"] == pytest.approx(audio_s, abs=1e-4)
        assert r["rtf"] == pytest.approx(r["median_s"] / (r["batch"] * audio_s), rel=0.02)
        assert r["speedup"] == pytest.approx(r["torch_median_s"] / r["median_s"], rel=0.02)


def test_loader_benchmark_smoke(tiny_corpus, tmp_path, capsys):
    from loader import main as loader_main

    train, val = tiny_corpus
    sets = [
        "data.corpus=filelists", f"data.train_filelist={train}", f"data.val_filelist={val}",
        f"data.cache_dir={tmp_path}/mel_cache", "data.batch_size=4", "data.buckets=[[40,132],[64,222]]",
        "model.n_frames_per_step=3",
    ]  # fmt: skip
    argv = ["--config", "configs/demo_graphemes.yaml", "--batches", "7", "--step-s", "0.5"]
    assert loader_main(argv + set_args(sets)) == 0
    rec = last_json_line(capsys)
    assert rec["batches"] == 7 and rec["batch_size"] == 4 and rec["train_items"] > 0
    assert rec["batches_per_s"] > 0 and rec["mel_frames_per_s"] > rec["batches_per_s"]
    assert rec["loader_share_of_step"] == pytest.approx(1.0 / rec["batches_per_s"] / 0.5, rel=0.01)
