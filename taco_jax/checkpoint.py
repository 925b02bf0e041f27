"""Orbax checkpoints: the train state plus a JSON item (config, symbol table, data iterator, metrics).

Layout: <run>/checkpoints/<step>/{state, meta}. The latest K are kept, and the best by validation loss.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from taco_jax.config import Config, from_yaml_string, load_config
from taco_jax.model import Tacotron2, build_model
from taco_jax.text import SymbolTable

log = logging.getLogger("taco_jax.checkpoint")


class CheckpointError(ValueError):
    """A checkpoint cannot be found or read; the message names the path."""


class Checkpointer:
    """Thin wrapper over `ocp.CheckpointManager` with the run's keep policy."""

    def __init__(self, directory: str | os.PathLike, keep: int = 3, read_only: bool = False):
        self.directory = Path(directory).absolute()
        preservation = policies.AnyPreservationPolicy(
            [
                policies.LatestN(n=max(1, keep)),
                policies.BestN(get_metric_fn=lambda m: m["val_loss"], reverse=True, n=1),
            ]
        )
        options = ocp.CheckpointManagerOptions(
            preservation_policy=preservation, create=not read_only, read_only=read_only
        )
        self.manager = ocp.CheckpointManager(self.directory, options=options, item_names=("state", "meta"))

    def save(self, step: int, state: Any, meta: dict, val_loss: float | None = None) -> None:
        metrics = {"val_loss": float(val_loss)} if val_loss is not None else None
        self.manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics=metrics,
            force=True,
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        return self.manager.best_step()

    def restore(self, step: int, target: Any | None = None) -> tuple[Any, dict]:
        """Restore (state, meta). With a target pytree, arrays come back with its structure and shardings;
        without one, on this process's first device, whatever devices or processes saved them (a checkpoint
        of a multi-process run loads on one machine)."""
        abstract = _abstract(target) if target is not None else self._on_one_device(step)
        state_args = ocp.args.StandardRestore(abstract)
        try:
            out = self.manager.restore(step, args=ocp.args.Composite(state=state_args, meta=ocp.args.JsonRestore()))
        except Exception as e:
            raise CheckpointError(f"{self.directory / str(step)}: cannot restore checkpoint: {e}") from e
        return out["state"], out["meta"]

    def _on_one_device(self, step: int) -> Any:
        path = self.directory / str(step) / "state"
        try:
            metadata = ocp.StandardCheckpointer().metadata(path)
        except Exception as e:
            raise CheckpointError(f"{path}: cannot read checkpoint metadata: {e}") from e
        tree = getattr(metadata, "item_metadata", metadata)
        tree = getattr(tree, "tree", tree)
        device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree.map(lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def _abstract(tree: Any) -> Any:
    return jax.tree.map(ocp.utils.to_shape_dtype_struct, tree)


def resolve_checkpoint(path: str | os.PathLike) -> tuple[Path, int]:
    """Resolve a run directory, a checkpoints directory or a step directory to (checkpoints_dir, step).

    For a run or checkpoints directory the best-by-val checkpoint is chosen, else the latest.
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint or run directory")
    if (p / "checkpoints").is_dir():
        p = p / "checkpoints"
    if (p / "state").exists() or (p / "meta").exists():
        if not p.name.isdigit():
            raise CheckpointError(f"{p}: checkpoint directory name is not a step number")
        return p.parent, int(p.name)
    steps = sorted(int(d.name) for d in p.iterdir() if d.is_dir() and d.name.isdigit())
    if not steps:
        raise CheckpointError(f"{p}: contains no checkpoint (expected <step>/state and <step>/meta)")
    manager = Checkpointer(p, read_only=True)
    step = manager.best_step() or manager.latest_step() or steps[-1]
    return p, step


def _check_meta(meta: Any, where: str) -> dict:
    for key in ("config", "symbols"):
        if not isinstance(meta, dict) or key not in meta:
            raise CheckpointError(f"{where}/meta: checkpoint metadata has no '{key}'")
    return meta


def read_meta(ckpt_dir: Path, step: int) -> dict:
    """The JSON item of a checkpoint (config, symbol table, data iterator state, ...), without the state."""
    manager = Checkpointer(ckpt_dir, read_only=True).manager
    try:
        meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
    except Exception as e:
        raise CheckpointError(f"{ckpt_dir / str(step)}/meta: missing or unreadable checkpoint metadata: {e}") from e
    return _check_meta(meta, str(ckpt_dir / str(step)))


def restore_model(path: str | os.PathLike, overrides: Sequence[str] = ()) -> tuple[Config, Tacotron2, dict[str, Any]]:
    """Load a trained model: (config, model, variables) with variables = {'params', 'batch_stats'}.

    `path` is a run directory, its checkpoints directory or one step directory. Overrides (`a.b=v`) apply
    to the stored config (e.g. `model.max_decoder_steps=2000`).
    """
    ckpt_dir, step = resolve_checkpoint(path)
    state, meta = Checkpointer(ckpt_dir, read_only=True).restore(step)  # one read of state and meta
    meta = _check_meta(meta, str(ckpt_dir / str(step)))
    cfg = from_yaml_string(meta["config"], source=f"{ckpt_dir / str(step)}/meta")
    if overrides:
        import tempfile

        from taco_jax.config import save_config

        with tempfile.TemporaryDirectory() as tmp:
            save_config(cfg, os.path.join(tmp, "config.yaml"))
            cfg = load_config(os.path.join(tmp, "config.yaml"), overrides)
    table = SymbolTable.from_dict(meta["symbols"])
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    try:
        variables = {"params": state["params"], "batch_stats": state["batch_stats"]}
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{ckpt_dir / str(step)}/state: missing key {e}") from None
    variables = jax.tree.map(np.asarray, variables)
    return cfg, model, variables


def restore_symbols(path: str | os.PathLike) -> SymbolTable:
    ckpt_dir, step = resolve_checkpoint(path)
    return SymbolTable.from_dict(read_meta(ckpt_dir, step)["symbols"])
