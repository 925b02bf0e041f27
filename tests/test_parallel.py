"""Data parallelism: 3 train steps with the batch sharded over 2 devices give the parameters of the same 3
steps on 1 device, for 2 (simulated) CPU devices in one process and for 2 processes on localhost joined by
`jax.distributed` (one CPU device each, gloo collectives).

Adam's epsilon is raised to 1e-3 here. Both runs compute the same sums in a different order, so gradients
agree to float rounding; but where a true gradient is zero (the conv biases that feed BatchNorm) or tiny,
Adam with eps 1e-8 divides that rounding noise by its own magnitude and takes a full-size step in a random
direction (up to ~lr per step, in either run). A larger epsilon leaves real gradients' updates as they are
and keeps noise-sized gradients from being amplified, so the comparison measures the parallelism, not Adam's
sensitivity to noise.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from taco_jax.config import DistributedConfig
from taco_jax.train.parallel import distributed_settings

TESTS = Path(__file__).resolve().parent

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    sys.path.insert(0, sys.argv[1])
    from conftest import build_trainer, random_batch, tiny_model_config
    from taco_jax.config import load_config
    from taco_jax.train.parallel import data_mesh, initialize_distributed, replicate, shard_batch, shutdown_distributed

    cfg = load_config(None, [f"model.{k}={v}" for k, v in vars(tiny_model_config()).items()]
                      + ["text.symbols=english_eos_v1", "data.buckets=[[40,132],[64,222]]", "control.clip.enabled=true",
                         "control.ga_weight.enabled=true", "optim.adam_eps=1e-3"] + sys.argv[2:])
    initialize_distributed(cfg.distributed)
    assert jax.device_count() == 2, jax.devices()
    n_symbols = 40
    _, initial, step = build_trainer(cfg, n_symbols)
    batches = [random_batch(s, [9, 8, 7, 5], [21, 18, 15, 12], n_symbols) for s in range(3)]
    result = {}
    for n in (1, 2):
        mesh = data_mesh(jax.local_devices()[:1] if n == 1 else jax.devices())
        state = replicate(jax.tree.map(np.array, initial), mesh)
        for b in batches:
            sharded = shard_batch(b, mesh)
            state, metrics = step(state, sharded)
        result[n] = {
            "params": [np.asarray(x).tolist() for x in jax.tree.leaves(state.params)],
            "shards": [list(s.data.shape) for s in sharded.text.addressable_shards],
            "process": jax.process_index(),
            "loss": float(metrics.means["train/loss"]),
        }
    try:
        shard_batch(random_batch(0, [4, 3, 2], [6, 6, 3], n_symbols), data_mesh(jax.devices()))
        result["odd_batch_error"] = None
    except ValueError as e:
        result["odd_batch_error"] = str(e)
    print(json.dumps(result), flush=True)
    shutdown_distributed()
    """
)


def _result(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def two_device_run():
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(TESTS)], env=env, capture_output=True, text=True, timeout=600
    )
    return _result(proc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _process_settings(port: int, index: int) -> list[str]:
    """Config overrides that make a process the `index`-th of 2 joined through localhost:`port`."""
    return [f"distributed.coordinator_address=localhost:{port}", "distributed.num_processes=2",
            f"distributed.process_id={index}"]  # fmt: skip


def _run_together(commands: list[list[str]], env: dict, timeout: float) -> list[subprocess.CompletedProcess]:
    """Run the commands at once. Output goes to files, not pipes: a process blocked on a full pipe would never
    reach the final barrier the others wait at."""
    with tempfile.TemporaryDirectory() as tmp:
        files = [(open(f"{tmp}/{i}.out", "w+"), open(f"{tmp}/{i}.err", "w+")) for i in range(len(commands))]
        procs = [
            subprocess.Popen(c, env=env, stdout=o, stderr=e, text=True)
            for c, (o, e) in zip(commands, files, strict=True)
        ]
        deadline = time.monotonic() + timeout
        try:
            for p in procs:
                p.wait(timeout=max(deadline - time.monotonic(), 1.0))
        finally:
            for p in procs:
                p.kill()
        results = []
        for c, p, (o, e) in zip(commands, procs, files, strict=True):
            o.seek(0), e.seek(0)
            results.append(subprocess.CompletedProcess(c, p.returncode, o.read(), e.read()))
            o.close(), e.close()
        return results


@pytest.fixture(scope="module")
def two_process_runs():
    port = _free_port()
    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    commands = [[sys.executable, "-c", SCRIPT, str(TESTS), *_process_settings(port, i)] for i in range(2)]
    return [_result(r) for r in _run_together(commands, env, timeout=900)]


def assert_same_arrays(reference, other) -> None:
    """Each array of `other` within 1e-5 of the same array of `reference`, relative to its scale (>= 1)."""
    for a, b in zip(reference, other, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        assert np.max(np.abs(a - b)) <= 1e-5 * max(np.max(np.abs(a)), 1.0)


def assert_same_training(one: dict, two: dict) -> None:
    assert len(one["params"]) == len(two["params"]) > 10
    assert_same_arrays(one["params"], two["params"])
    assert abs(one["loss"] - two["loss"]) <= 1e-5 * abs(one["loss"])


def test_two_devices_match_one_device(two_device_run):
    one, two = two_device_run["1"], two_device_run["2"]
    assert one["shards"] == [[4, 9]] and two["shards"] == [[2, 9], [2, 9]]  # the batch really was split
    assert_same_training(one, two)


def test_two_processes_match_one_device(two_process_runs):
    for process, run in enumerate(two_process_runs):
        one, two = run["1"], run["2"]
        assert one["process"] == two["process"] == process
        assert one["shards"] == [[4, 9]] and two["shards"] == [[2, 9]]  # each process holds half the batch
        assert_same_training(one, two)
    # Both processes hold the same (replicated) parameters.
    assert_same_training(two_process_runs[0]["2"], two_process_runs[1]["2"])
    assert two_process_runs[0]["odd_batch_error"] is not None


@pytest.mark.slow
def test_train_command_with_two_processes_matches_one_process(tiny_corpus, tmp_path):
    """`python -m taco_jax.train` in 2 processes (one device each): one run directory, written by process 0,
    and the checkpoint of the same training as a single process."""
    from conftest import tiny_train_overrides

    from taco_jax.checkpoint import restore_model

    config = tmp_path / "tiny.yaml"
    config.write_text("run:\n  name: t\n")  # the rest comes as overrides

    def command(out: str, *extra: str) -> list[str]:
        sets = tiny_train_overrides(tiny_corpus, tmp_path / out, "optim.adam_eps=1e-3", *extra)
        args = [sys.executable, "-m", "taco_jax.train", "--config", str(config), "--no-progress"]
        return args + [a for s in sets for a in ("--set", s)]

    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1")
    port = _free_port()
    samples = "run.sample_sentences=[Hello there.]"
    pair = [command("multi", *_process_settings(port, i), samples) for i in range(2)]
    for result in _run_together(pair, env, timeout=900) + _run_together([command("single")], env, timeout=900):
        assert result.returncode == 0, result.stderr[-3000:]

    runs = sorted((tmp_path / "multi" / "runs").iterdir())
    assert [r.name for r in runs] == ["t"]  # both processes chose the same directory
    records = [json.loads(x) for x in open(runs[0] / "metrics.jsonl")]
    assert [r["step"] for r in records if "train/loss" in r] == [2, 4]  # written once, by process 0
    assert list((runs[0] / "samples").glob("*.wav"))
    _, _, multi_vars = restore_model(str(runs[0]))
    _, _, single_vars = restore_model(str(tmp_path / "single" / "runs" / "t"))
    assert_same_arrays(jax.tree.leaves(single_vars), jax.tree.leaves(multi_vars))


def test_distributed_settings_from_config_then_environment():
    assert distributed_settings(DistributedConfig(), environ={}) is None
    env = {"TACO_JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "TACO_JAX_NUM_PROCESSES": "4", "TACO_JAX_PROCESS_ID": "3"}
    assert distributed_settings(DistributedConfig(), environ=env) == ("10.0.0.1:1234", 4, 3)
    assert distributed_settings(DistributedConfig(process_id=1), environ=env) == ("10.0.0.1:1234", 4, 1)
    with pytest.raises(ValueError, match=r"missing: distributed.num_processes \(or TACO_JAX_NUM_PROCESSES\)"):
        distributed_settings(DistributedConfig(coordinator_address="h:1", process_id=0), environ={})
    with pytest.raises(ValueError, match=r"process_id must be in \[0, num_processes\) = \[0, 2\), got 2"):
        distributed_settings(DistributedConfig("h:1", 2, 2), environ={})
    with pytest.raises(ValueError, match="TACO_JAX_NUM_PROCESSES='two' is not an integer"):
        distributed_settings(DistributedConfig(), environ={**env, "TACO_JAX_NUM_PROCESSES": "two"})


def test_batch_not_divisible_by_devices_is_an_error(two_device_run):
    msg = two_device_run["odd_batch_error"]
    assert msg is not None and "data.batch_size (3)" in msg and "number of devices (2)" in msg
