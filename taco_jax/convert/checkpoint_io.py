"""Whole-file conversion between PyTorch Tacotron 2 checkpoints (.pt) and taco_jax checkpoint directories.

`torch_ckpt` maps state_dict tensors; this module handles the files around them: reading a .pt safely
(`torch.load(..., weights_only=True)`; full unpickling only when the caller trusts the file), building the
taco_jax config for the converted model, writing the checkpoint (a params-only one, or a resumable train state
when the file holds Adam's state) and exporting a taco_jax checkpoint back to a .pt file.

The taco_jax checkpoint (<OUT_DIR>/checkpoints/<step>/{state,meta} + config.yaml + conversion_report.json)
uses configs/nvidia_ljspeech.yaml with the model dims inferred from the tensors and the symbol table the
embedding fits (NVIDIA's 148 symbols, or T2N's tables).

torch, jax and the model are imported inside the functions, so importing taco_jax.convert stays light.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from taco_jax.convert.torch_ckpt import T2N_LAYOUTS, flax_to_torch, torch_adam_moments, torch_to_flax
from taco_jax.errors import UserError
from taco_jax.files import atomic_output, write_text_atomic

if TYPE_CHECKING:
    from taco_jax.config import Config

__all__ = [
    "NVIDIA_CONFIG",
    "CheckpointFileError",
    "build_config",
    "load_torch_checkpoint",
    "taco_jax_to_torch",
    "torch_to_taco_jax",
]

NVIDIA_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "nvidia_ljspeech.yaml"
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
T2N_SYMBOL_TABLES = {60: "t2n_translit_v1", 41: "t2n_translit_legacy_v1"}  # by embedding rows: HEAD, legacy
OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict")  # NVIDIA's train.py / T2N's trainer


class CheckpointFileError(UserError, ValueError):
    """A file, output directory or symbol table the converter cannot use; the message is for the user."""


def load_torch_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """Read a .pt file -> (state_dict as key -> numpy array, the other top-level entries of the file).

    Accepts a dict holding 'state_dict' / 'model_state_dict' / 'model' (a mapping or a pickled module), or
    a bare mapping of tensors. Half-precision floats are cast to float32.
    """
    import torch

    obj = read_torch_file(path, trust_pickle)
    extra: dict = {}
    sd: Any = None
    if isinstance(obj, Mapping):
        for key in STATE_DICT_KEYS:
            value = obj.get(key)
            if hasattr(value, "state_dict") and callable(value.state_dict):
                value = value.state_dict()
            if isinstance(value, Mapping):
                sd = value
                extra = {k: v for k, v in obj.items() if k != key}
                break
        if sd is None and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
            sd = obj
    elif hasattr(obj, "state_dict") and callable(obj.state_dict):
        sd = obj.state_dict()
    if sd is None:
        keys = list(obj.keys()) if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointFileError(
            f"{path}: no state_dict found (expected one of {STATE_DICT_KEYS} or a bare mapping; got {keys})"
        )

    out: dict[str, Any] = {}
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu()
            if v.is_floating_point() and v.dtype != torch.float32:
                v = v.float()
            v = v.numpy()
        out[str(k)] = v
    return out, extra


class _NoGlobalsUnpickler(pickle.Unpickler):
    """An unpickler that refuses every global and persistent id, so reading a header runs no code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent id")


def _not_a_checkpoint(path: str | os.PathLike) -> str | None:
    """Why `path` is not a PyTorch checkpoint, or None when it looks like one: a zip archive holding
    <name>/data.pkl (torch.save since 1.6) or a legacy stream whose first pickle is torch's magic number.

    Checked before torch.load, whose errors on arbitrary bytes read like a pickle it refused on safety grounds."""
    from torch.serialization import MAGIC_NUMBER

    if os.path.getsize(path) == 0:
        return "empty file"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(name == "data.pkl" or name.endswith("/data.pkl") for name in zf.namelist()):
                return None
        return "a zip archive without data.pkl"
    with open(path, "rb") as f:
        try:
            first = _NoGlobalsUnpickler(f).load()
        except Exception:  # noqa: BLE001  # any failure: not a pickle stream at all
            first = None
    if isinstance(first, int) and first == MAGIC_NUMBER:
        return None
    return "neither a zip archive with data.pkl nor a legacy torch pickle stream"


def read_torch_file(path: str | os.PathLike, trust_pickle: bool) -> Any:
    """torch.load(path) with weights_only unless `trust_pickle`; every failure is a CheckpointFileError whose
    advice fits the cause (--trust-pickle only for a real checkpoint that pickles other objects)."""
    import torch

    try:
        why = _not_a_checkpoint(path)
    except FileNotFoundError:
        raise CheckpointFileError(f"{path}: no such file") from None
    except OSError as e:
        raise CheckpointFileError(f"{path}: cannot read: {e}") from None
    if why is not None:
        raise CheckpointFileError(f"{path}: not a PyTorch checkpoint ({why})")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            raise CheckpointFileError(
                f"{path}: torch.load(weights_only=True) refused this file: it pickles objects other than tensors "
                f"and plain containers ({_first_line(e)}). Unpickling runs code from the file: if you trust it, "
                f"rerun with --trust-pickle."
            ) from None
    except Exception as e:  # noqa: BLE001  # a truncated or corrupt archive: report it, no traceback
        raise CheckpointFileError(f"{path}: cannot read PyTorch checkpoint: {_first_line(e)}") from None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # noqa: BLE001  # e.g. a class the file pickles that this Python cannot import
        raise CheckpointFileError(
            f"{path}: cannot unpickle this checkpoint even with --trust-pickle: {_first_line(e)}"
        ) from None


def _first_line(e: BaseException) -> str:
    """The first line of an exception's message (torch's run to pages), or its type when it has none."""
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _flatten(tree: Mapping, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    flat = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            flat.update(_flatten(v, (*prefix, k)))
        else:
            flat[(*prefix, k)] = v
    return flat


def _unflatten(flat: Mapping[tuple[str, ...], Any]) -> dict:
    tree: dict = {}
    for path, v in flat.items():
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = v
    return tree


def build_config(report: Mapping[str, Any]) -> Config:
    """configs/nvidia_ljspeech.yaml with the model dims (and n_mels) of the converted checkpoint."""
    from taco_jax.config import from_yaml_string, load_config, to_yaml

    cfg = load_config(str(NVIDIA_CONFIG))  # T2N kept NVIDIA's audio front end
    if report["layout"] in T2N_LAYOUTS:
        n_symbols = report["config"]["n_symbols"]
        if n_symbols not in T2N_SYMBOL_TABLES:
            raise CheckpointFileError(
                f"{report['layout']} checkpoint with {n_symbols} symbols: taco_jax has T2N's tables of "
                f"{' and '.join(map(str, T2N_SYMBOL_TABLES))} symbols only (HEAD's and the legacy layout's). Convert "
                "the weights from Python with taco_jax.convert.torch_to_flax (report['config'] holds the model)."
            )
        cfg.text.symbols, cfg.text.cleaners = T2N_SYMBOL_TABLES[n_symbols], ["t2n_transliteration_cleaners"]
        cfg.text.add_eos = False
    for key, value in report["config"].items():
        if key != "n_symbols":
            setattr(cfg.model, key, value)
    cfg.audio.n_mels = int(report["n_mels"])
    r = cfg.model.n_frames_per_step
    cfg.data.buckets = [[t, -(-m // r) * r] for t, m in cfg.data.buckets]  # mel frames a multiple of r
    return from_yaml_string(to_yaml(cfg), source="converted config")  # validated


def torch_to_taco_jax(
    in_path: str | os.PathLike, out_dir: str | os.PathLike, layout: str = "auto", trust_pickle: bool = False,
    allow_missing: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Convert a .pt checkpoint into a taco_jax checkpoint directory; returns the conversion report.

    The report is `torch_to_flax`'s (layout, config, n_mels, converted, missing, unexpected, ignored) plus
    `initialised` (variables freshly initialised, with `allow_missing`) and, for files with Adam's state,
    `optimizer`. Raises CheckpointFileError (or ConversionError for a state_dict that does not map) with a
    message for the user; nothing is written before the conversion has succeeded.
    """
    from taco_jax.model import build_model
    from taco_jax.text import get_symbol_table

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        raise CheckpointFileError(f"{ckpt_dir}: already contains checkpoints; choose an empty output directory")
    state_dict, extra = load_torch_checkpoint(in_path, trust_pickle)
    params, batch_stats, report = torch_to_flax(state_dict, layout, allow_missing=allow_missing)
    cfg = build_config(report)
    table = get_symbol_table(cfg.text.symbols)
    n_symbols = report["config"]["n_symbols"]
    if n_symbols != len(table):
        raise CheckpointFileError(
            f"{in_path}: embedding.weight has {n_symbols} rows but the symbol table {table.name!r} "
            f"has {len(table)}; this checkpoint was not trained with that table"
        )
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    variables, report["initialised"] = _fit_to_model(model, cfg, params, batch_stats)
    step = extra.get("iteration", extra.get("global_step", 0))
    step = int(step) if isinstance(step, int | np.integer) and step >= 0 else 0
    optimizer = next((extra[k] for k in OPTIMIZER_KEYS if isinstance(extra.get(k), Mapping)), None)
    state = {"params": variables["params"], "batch_stats": variables["batch_stats"]}
    if optimizer is not None:  # a full train state: `train --resume` continues with Adam's moments
        state = _resumable_state(cfg, model, variables, optimizer, state_dict, report["layout"], step)
        report["optimizer"] = f"Adam moments converted, step {step}"
    summary = {k: report[k] for k in ("layout", "config", "n_mels", "missing", "unexpected", "ignored", "initialised")}
    summary["optimizer"] = report.get("optimizer", "none in the file: params and batch statistics only")
    summary["source"] = str(Path(in_path).resolve())
    _write_checkpoint(out, cfg, table, state, step, summary)
    return report


def _fit_to_model(model, cfg, params: Mapping, batch_stats: Mapping) -> tuple[dict, list[str]]:
    """({"params", "batch_stats"} checked against the model's own variable shapes, the names of variables the
    conversion did not supply and that were taken from a fresh initialisation)."""
    import jax

    from taco_jax.train.state import init_variables

    r = cfg.model.n_frames_per_step
    init = lambda: init_variables(model, jax.random.PRNGKey(cfg.run.seed), cfg.audio.n_mels, r)  # noqa: E731
    want = _flatten(jax.eval_shape(init))
    got = _flatten({"params": params, "batch_stats": batch_stats})
    wrong = [f"{'/'.join(k)}: model {want[k].shape}, converted {got[k].shape}" for k in got if k in want and
             tuple(want[k].shape) != tuple(got[k].shape)]  # fmt: skip
    extra_vars = ["/".join(k) for k in got if k not in want]
    if wrong or extra_vars:
        raise CheckpointFileError(f"converted variables do not fit the taco_jax model: {'; '.join(wrong + extra_vars)}")
    filled = ["/".join(k) for k in want if k not in got]
    if filled:  # only reachable with allow_missing: take the fresh initialisation
        fresh = _flatten(jax.device_get(init()))
        got.update({k: np.asarray(fresh[k]) for k in want if k not in got})
    return _unflatten(got), filled


def _write_checkpoint(out: Path, cfg, table, state, step: int, summary: Mapping[str, Any]) -> None:
    """OUT/config.yaml, OUT/checkpoints/<step>/ (state + meta with config, symbols and `summary`) and
    OUT/conversion_report.json (`summary`)."""
    import jax

    from taco_jax.checkpoint import Checkpointer
    from taco_jax.config import save_config, to_yaml

    meta = {"config": to_yaml(cfg), "symbols": table.to_dict(), "step": step, "converted_from": summary}
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, str(out / "config.yaml"))
    ckpt = Checkpointer(out / "checkpoints", keep=1)
    ckpt.save(step, jax.tree.map(np.asarray, state), meta)  # orbax writes a temp dir, then renames it
    ckpt.close()
    write_text_atomic(str(out / "conversion_report.json"), json.dumps(summary, indent=2) + "\n")


def _resumable_state(cfg, model, variables, optimizer, state_dict, layout: str, step: int):
    """TrainState with the converted weights, Adam moments and step (LR schedule and Adam's count at `step`);
    controllers and the PRNG key start fresh from the config."""
    import jax
    import jax.numpy as jnp

    from taco_jax.train.controllers import build_controllers
    from taco_jax.train.state import create_train_state, with_adam_moments

    optimizer = jax.tree.map(lambda x: np.asarray(x.detach().cpu()) if hasattr(x, "detach") else x, optimizer)
    mu, nu, adam_step = torch_adam_moments(optimizer, state_dict, layout)
    controllers = build_controllers(cfg)  # the trainer's own optimizer and controllers, so `--resume` fits
    state = create_train_state(model, controllers.tx, cfg.run.seed, cfg.audio.n_mels, controllers.init())
    params = jax.tree.map(jnp.asarray, variables["params"])
    opt_state = with_adam_moments(controllers.tx.init(params), mu, nu, adam_step or step)
    return state.replace(
        step=jnp.asarray(step, jnp.int32), params=params,
        batch_stats=jax.tree.map(jnp.asarray, variables["batch_stats"]), opt_state=opt_state,
    )  # fmt: skip


def taco_jax_to_torch(in_dir: str | os.PathLike, out_path: str | os.PathLike, layout: str = "nvidia") -> Path:
    """Export a taco_jax checkpoint (run, checkpoints or step directory) as {'state_dict': ...} in `layout`
    ("auto" = nvidia) to `out_path` (a directory gets tacotron2_statedict.pt), atomically; returns the path."""
    import torch

    from taco_jax.checkpoint import restore_model

    _, _, variables = restore_model(in_dir)
    sd = flax_to_torch(variables["params"], variables["batch_stats"], "nvidia" if layout == "auto" else layout)
    target = Path(out_path)
    if target.is_dir():
        target = target / "tacotron2_statedict.pt"
    with atomic_output(target) as tmp:
        torch.save({"state_dict": {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}}, tmp)
    return target
