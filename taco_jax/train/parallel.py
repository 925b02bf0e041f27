"""Data parallelism with `jax.sharding`: batch split on a `data` axis over every device, state replicated.

One code path for one device, many local devices, or many processes: the train step is the same `jax.jit`
program; placing its inputs (state replicated, batch sharded along the batch dimension) makes XLA partition
it and insert the gradient all-reduce itself. The step's means are over the global batch, and BatchNorm
statistics too, so N devices compute what one device computes on the whole batch (up to the order of float
additions). With one device the placement is a plain `device_put`.

Several processes (hosts) join through `initialize_distributed` before anything else touches JAX. Every
process then runs the same program on the same global batch: the loader is deterministic (same seed, same
order) and cheap next to a step (benchmarks/loader.py), so each process assembles the whole batch and
`jax.device_put` sends each of its devices only that device's slice.
"""

from __future__ import annotations

import logging
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from taco_jax.config import DistributedConfig

DATA_AXIS = "data"
ENV_PREFIX = "TACO_JAX_"  # TACO_JAX_COORDINATOR_ADDRESS, TACO_JAX_NUM_PROCESSES, TACO_JAX_PROCESS_ID

log = logging.getLogger("taco_jax.train")


def distributed_settings(cfg: DistributedConfig, environ=os.environ) -> tuple[str, int, int] | None:
    """(coordinator_address, num_processes, process_id) from the config, else from the environment; None when
    neither sets anything (a single-process run). Each config key falls back to its own variable
    (`distributed.num_processes` <- TACO_JAX_NUM_PROCESSES, ...); a partial setting is an error."""
    values = {}
    for key in ("coordinator_address", "num_processes", "process_id"):
        value = getattr(cfg, key)
        env = ENV_PREFIX + key.upper()
        if value is None and environ.get(env, "") != "":
            try:
                value = environ[env] if key == "coordinator_address" else int(environ[env])
            except ValueError:
                raise ValueError(f"{env}={environ[env]!r} is not an integer") from None
        values[key] = value
    if all(v is None for v in values.values()):
        return None
    missing = [f"distributed.{k} (or {ENV_PREFIX}{k.upper()})" for k, v in values.items() if v is None]
    if missing:
        raise ValueError(f"a multi-process run needs all three settings; missing: {', '.join(missing)}")
    address, count, index = values["coordinator_address"], values["num_processes"], values["process_id"]
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"distributed.process_id must be in [0, num_processes) = [0, {count}), got {index}")
    return address, count, index


def initialize_distributed(cfg: DistributedConfig) -> bool:
    """Join a multi-process run (`jax.distributed.initialize`) when configured; returns whether it did.

    Must run before the first JAX computation. On CPU, cross-process collectives go through gloo.
    """
    settings = distributed_settings(cfg)
    if settings is None:
        return False
    address, count, index = settings
    if os.environ.get("JAX_PLATFORMS", "").startswith("cpu"):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, num_processes=count, process_id=index)
    log.info("process %d of %d joined via %s; devices: %d global, %d local", index, count, address,
             jax.device_count(), jax.local_device_count())  # fmt: skip
    return True


def shutdown_distributed() -> None:
    """Leave a multi-process run once every process got here (process 0 hosts the coordinator, so it must not
    exit first); nothing to do in a single process."""
    if jax.process_count() > 1:
        barrier("finished")
        jax.distributed.shutdown()


def is_primary() -> bool:
    """True in the process that writes logs, metrics and files (process 0; always in a single process)."""
    return jax.process_index() == 0


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier `name` (nothing to wait for in a single process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
    """Every leaf of `tree` (e.g. the TrainState) copied to all devices of `mesh`; every process must pass
    the same values."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch, mesh: Mesh):
    """Split each array of the global `batch` along its first (batch) axis over the `data` axis of `mesh`.

    Every process passes the same global batch; each device receives its slice. The batch size must be a
    multiple of the device count (checked per batch: with `data.drop_remainder: false` a bucket's last batch
    is smaller).
    """
    n, size = mesh.devices.size, np.shape(jax.tree.leaves(batch)[0])[0]
    if size % n:
        raise ValueError(
            f"data.batch_size ({size}) must be a multiple of the number of devices ({n}) for data parallelism"
        )
    return jax.device_put(batch, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))
