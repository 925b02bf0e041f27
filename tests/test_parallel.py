"""Data parallelism: 3 train steps with the batch sharded over 2 (simulated CPU) devices give the parameters
of the same 3 steps on 1 device.

Adam's epsilon is raised to 1e-3 here. Both runs compute the same sums in a different order, so gradients
agree to float rounding; but where a true gradient is zero (the conv biases that feed BatchNorm) or tiny,
Adam with eps 1e-8 divides that rounding noise by its own magnitude and takes a full-size step in a random
direction (up to ~lr per step, in either run). A larger epsilon leaves real gradients' updates as they are
and keeps noise-sized gradients from being amplified, so the comparison measures the parallelism, not Adam's
sensitivity to noise.
"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    from conftest import random_batch, tiny_model_config
    from taco_jax.config import load_config
    from taco_jax.control.build import build_tx, init_control_state
    from taco_jax.model import build_model
    from taco_jax.train.parallel import data_mesh, replicate, shard_batch
    from taco_jax.train.state import create_train_state
    from taco_jax.train.step import make_train_step

    assert jax.device_count() == 2, jax.devices()
    cfg = load_config(None, [f"model.{k}={v}" for k, v in vars(tiny_model_config()).items()]
                      + ["text.symbols=english_eos_v1", "data.buckets=[[40,132],[64,222]]", "control.clip.enabled=true",
                         "control.ga_weight.enabled=true", "optim.adam_eps=1e-3"])
    n_symbols = 40
    model = build_model(cfg.model, n_symbols)
    tx = build_tx(cfg)
    step = make_train_step(model, tx, cfg)
    batches = [random_batch(s, [9, 8, 7, 5], [21, 18, 15, 12], n_symbols) for s in range(3)]
    result = {}
    for n in (1, 2):
        mesh = data_mesh(jax.devices()[:n])
        state = replicate(create_train_state(model, tx, 0, 80, init_control_state(cfg)), mesh)
        for b in batches:
            sharded = shard_batch(b, mesh)
            state, metrics = step(state, sharded)
        result[n] = {
            "params": [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)],
            "shards": [list(s.data.shape) for s in sharded.text.addressable_shards],
            "loss": float(metrics["train/loss"]),
        }
    try:
        shard_batch(random_batch(0, [4, 3, 2], [6, 6, 3], n_symbols), data_mesh(jax.devices()))
        result["odd_batch_error"] = None
    except ValueError as e:
        result["odd_batch_error"] = str(e)
    print(json.dumps(result))
    """
)


@pytest.fixture(scope="module")
def two_device_run():
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TESTS)], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_devices_match_one_device(two_device_run):
    import numpy as np

    one, two = two_device_run["1"], two_device_run["2"]
    assert one["shards"] == [[4, 9]] and two["shards"] == [[2, 9], [2, 9]]  # the batch really was split
    assert len(one["params"]) == len(two["params"]) > 10
    for a, b in zip(one["params"], two["params"], strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert np.max(np.abs(a - b)) <= 1e-5 * max(np.max(np.abs(a)), 1.0)
    assert abs(one["loss"] - two["loss"]) <= 1e-5 * abs(one["loss"])


def test_batch_not_divisible_by_devices_is_an_error(two_device_run):
    msg = two_device_run["odd_batch_error"]
    assert msg is not None and "data.batch_size (3)" in msg and "number of devices (2)" in msg
