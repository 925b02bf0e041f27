"""Data parallelism over every local device with `jax.sharding`: batch split on a `data` axis, state replicated.

One code path for one or many devices: the train step is the same `jax.jit` program; placing its inputs
(state replicated, batch sharded along the batch dimension) makes XLA partition it and insert the gradient
all-reduce itself. The step's means are over the global batch, and BatchNorm statistics too, so N devices
compute what one device computes on the whole batch (up to the order of float additions). With one device
the placement is a plain `device_put`.

Single process only for now: a multi-process run would also need each process to load its own slice of
every batch; `shard_batch` refuses one rather than feed every process the same data.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"


def data_mesh(devices=None) -> Mesh:
    """A 1-D mesh named `data` over `devices` (default: every device of every process)."""
    devices = jax.devices() if devices is None else list(devices)
    return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicate(tree, mesh: Mesh):
    """Every leaf of `tree` (e.g. the TrainState) copied to all devices of `mesh`."""
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def shard_batch(batch, mesh: Mesh):
    """Split each array of the global `batch` along its first (batch) axis over the `data` axis of `mesh`.

    The batch size must be a multiple of the device count.
    """
    if jax.process_count() != 1:
        raise NotImplementedError("multi-process data loading is not implemented; run one process per host")
    n = mesh.devices.size
    for x in jax.tree.leaves(batch):
        if np.shape(x)[0] % n:
            raise ValueError(
                f"data.batch_size ({np.shape(x)[0]}) must be a multiple of the number of devices ({n}) "
                "for data parallelism"
            )
    return jax.device_put(batch, NamedSharding(mesh, PartitionSpec(DATA_AXIS)))
