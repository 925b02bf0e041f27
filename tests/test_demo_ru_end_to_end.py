"""The Russian demo end to end, shrunk to a CI guard: build a tiny Russian corpus, train a tiny model on it for
a few steps with configs/demo_ru.yaml's front end (russian_v1, russian_cleaners, eSpeak's "ru" voice), then
synthesize a Russian sentence with digits from the checkpoint. Nothing here judges quality: the full recipe is
`python -m taco_jax.train --config configs/demo_ru.yaml` (and benchmarks/demo_quality.py on its run)."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import tiny_model_config

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "Поезд отправляется в 7:45 с третьего пути."


@pytest.mark.slow
def test_russian_demo_trains_and_speaks(tmp_path):
    t0 = time.time()
    # The corpus and the mel cache go to the user cache dir: keep them in tmp_path.
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), JAX_PLATFORMS="cpu")
    model = [f"model.{k}={v}" for k, v in vars(tiny_model_config(max_decoder_steps=150)).items()]
    overrides = [
        f"run.out_dir={tmp_path}/runs", "run.max_steps=20", "run.log_every=10", "run.eval_every=20",
        "run.sample_sentences=[]", "data.demo.n_utterances=48", "data.demo.n_val=8", "data.batch_size=8",
        "data.buckets=[[112,519]]", *model,
    ]  # fmt: skip
    cmd = [sys.executable, "-m", "taco_jax.train", "--config", "configs/demo_ru.yaml", "--no-progress"]
    subprocess.run(cmd + [x for o in overrides for x in ("--set", o)], cwd=ROOT, env=env, check=True, timeout=300)
    run = tmp_path / "runs" / "demo_ru"
    assert (run / "final_metrics.json").exists() and (run / "config.yaml").exists()
    corpus = next((tmp_path / "cache").rglob("meta.json"))
    meta = json.loads(corpus.read_text(encoding="utf-8"))
    assert meta["demo"]["language"] == "ru" and meta["n_train"] == 40
    train_text = (corpus.parent / "train.txt").read_text(encoding="utf-8")
    assert any("а" <= ch <= "я" for ch in train_text.lower())
    from taco_jax.checkpoint import restore_front_end

    assert restore_front_end(run) == {"cleaners": ["russian_cleaners"], "files": {}, "espeak_ng": None}

    out = tmp_path / "synth"
    cmd = [sys.executable, "-m", "taco_jax.synthesize", "--checkpoint", str(run), "--text", SENTENCE,
           "--out-dir", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, timeout=300)
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [r["text"] for r in report] == [SENTENCE]
    assert (out / report[0]["wav"]).stat().st_size > 1000 and report[0]["frames"] > 0
    print(f"Russian demo guard: {time.time() - t0:.0f} s")
