"""Fault injection: training processes SIGKILLed at random points (start-up, a step, a metrics write, validation,
sample writing, a checkpoint save), each followed by `--resume`, end with the parameters of an uninterrupted
run, bit for bit, and logs that hold every step once.

FAULT_TRIES (default 20) sets the number of kills and FAULT_SEED (default 1234) the random kill points; the long
variant (benchmarks/RESULTS.md) runs more.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import jax
import numpy as np
import pytest
from conftest import tiny_config_file

from taco_jax.checkpoint import Checkpointer

CHILD = Path(__file__).with_name("fault_child.py")
POINTS = ("start", "step", "log", "eval", "samples", "checkpoint")
MAX_STEPS, EVAL_EVERY = 9, 3
KILLED = -9


def _child(point: str, nth: int, delay_s: float, train_args: list[str], cache: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, JAX_PLATFORMS="cpu", FAULT_JAX_CACHE=str(cache))
    cmd = [sys.executable, str(CHILD), point, str(nth), f"{delay_s:.3f}", "--", *train_args, "--no-progress"]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def _final_state(run_dir: Path) -> list[np.ndarray]:
    ckpt = Checkpointer(run_dir / "checkpoints", read_only=True)
    try:
        state, _ = ckpt.restore(MAX_STEPS)
    finally:
        ckpt.close()
    return [np.asarray(x) for x in jax.tree.leaves(state)]


def _check_logs(run_dir: Path) -> None:
    """metrics.jsonl: every line whole, each (step, metric) once, and a training record for every step."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    repeated = [key for key, n in Counter((r["step"], k) for r in records for k in r if k != "step").items() if n > 1]
    assert repeated == []
    assert sorted(r["step"] for r in records if "train/loss" in r) == list(range(1, MAX_STEPS + 1))


def _kill_point(rng: random.Random) -> tuple[str, int, float]:
    point = rng.choice(POINTS)
    if point == "start":
        return point, 1, rng.uniform(0.5, 12.0)
    nth = rng.randint(1, 3 if point in ("eval", "samples", "checkpoint") else EVAL_EVERY * 2)
    delay = rng.uniform(0.0, 0.3 if point in ("step", "log") else 1.5)
    return point, nth, delay


@pytest.mark.slow
def test_sigkill_anywhere_then_resume_equals_an_uninterrupted_run(tiny_corpus, tmp_path):
    tries = int(os.environ.get("FAULT_TRIES", "20"))
    cache = tmp_path / "jax_cache"
    # Short samples (max_decoder_steps): their Griffin-Lim (its NNLS) would be most of each evaluation.
    overrides = (f"run.max_steps={MAX_STEPS}", f"run.eval_every={EVAL_EVERY}", "run.log_every=1",
                 "run.keep_checkpoints=2", "run.sample_sentences=[Hello there.]",
                 "model.max_decoder_steps=10")  # fmt: skip
    reference_dir = tmp_path / "reference"
    reference_dir.mkdir()
    config = tiny_config_file(tiny_corpus, reference_dir, *overrides)
    done = _child("none", 0, 0.0, ["--config", config], cache)
    assert done.returncode == 0, done.stderr[-3000:]
    expected = _final_state(reference_dir / "runs" / "t")

    rng = random.Random(int(os.environ.get("FAULT_SEED", "1234")))
    kills, chains, children, differing_bytes, points = 0, 0, 0, 0, Counter()
    while kills < tries:
        chains += 1
        home = tmp_path / f"chain{chains}"
        home.mkdir()
        config = tiny_config_file(tiny_corpus, home, *overrides)
        run_dir = home / "runs" / "t"
        while True:
            point, nth, delay = _kill_point(rng) if kills < tries else ("none", 0, 0.0)
            started = (run_dir / "config.yaml").exists()
            args = ["--resume", str(run_dir)] if started else ["--config", config]
            result = _child(point, nth, delay, args, cache)
            children += 1
            assert result.returncode in (0, KILLED), f"{point} {nth} {delay}: {result.stderr[-3000:]}"
            if result.returncode == KILLED:
                kills += 1
                points[point] += 1
                continue
            break
        assert not list(home.glob("runs/t-*")), "a resume must never start a second run"
        _check_logs(run_dir)
        final = _final_state(run_dir)
        for a, b in zip(expected, final, strict=True):
            assert a.shape == b.shape and a.dtype == b.dtype
            differing_bytes += int(np.sum(np.atleast_1d(a).view(np.uint8) != np.atleast_1d(b).view(np.uint8)))
    assert differing_bytes == 0
    print(f"fault injection: {kills} kills in {chains} runs ({children} processes), by point {dict(points)}; "
          f"failures 0; parameter bytes differing from the uninterrupted run: {differing_bytes}")  # fmt: skip
    assert set(points) >= {"step", "eval", "checkpoint"} or tries < 20
