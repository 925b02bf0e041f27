"""Convert NVIDIA/tacotron2 or DeepLearningExamples PyTorch checkpoints to taco_jax checkpoints, and back.

    python tools/convert_torch_ckpt.py tacotron2_statedict.pt runs/nvidia_pretrained
    python tools/convert_torch_ckpt.py runs/nvidia_pretrained exported.pt --to-torch [--layout dle]

The taco_jax checkpoint (<OUT_DIR>/checkpoints/<step>/{state,meta} + config.yaml + conversion_report.json)
uses configs/nvidia_ljspeech.yaml with the model dims inferred from the tensors and the NVIDIA 148-symbol
table; `taco_jax.checkpoint.restore_model(OUT_DIR)` loads it (synthesis, warm start). When the file holds an
Adam state (NVIDIA's train.py checkpoints: 'optimizer') the checkpoint is a full train state at the file's
iteration, with the Adam moments converted: `python -m taco_jax.train --config OUT_DIR/config.yaml --set
run.out_dir=<parent of OUT_DIR> --set run.name=<name of OUT_DIR> --set data... --resume` continues training.
Otherwise it holds params and batch_stats only.

Files are loaded with `torch.load(..., weights_only=True)`; a checkpoint that pickles arbitrary objects
is only unpickled with --trust-pickle (unpickling can run code: only for files you trust).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a script from a checkout
    sys.path.insert(0, str(REPO))

from taco_jax.convert import LAYOUTS, T2N_LAYOUTS, flax_to_torch, torch_to_flax  # noqa: E402

NVIDIA_CONFIG = REPO / "configs" / "nvidia_ljspeech.yaml"
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")
T2N_SYMBOL_TABLES = {60: "t2n_translit_v1", 41: "t2n_translit_legacy_v1"}  # by embedding rows: HEAD, legacy
OPTIMIZER_KEYS = ("optimizer", "optimizer_state_dict")  # NVIDIA's train.py / T2N's trainer


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


def load_torch_checkpoint(path: str | os.PathLike, trust_pickle: bool = False) -> tuple[dict[str, np.ndarray], dict]:
    """Read a .pt file -> (state_dict as key -> numpy array, the other top-level entries of the file).

    Accepts a dict holding 'state_dict' / 'model_state_dict' / 'model' (a mapping or a pickled module), or
    a bare mapping of tensors. Half-precision floats are cast to float32.
    """
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if not trust_pickle:
            first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise CLIError(
                f"{path}: torch.load(weights_only=True) refused this file: it pickles objects other than tensors "
                f"and plain containers ({first}). Unpickling runs code from the file: if you trust it, rerun with "
                f"--trust-pickle."
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise CLIError(f"{path}: no such file") from None
    except Exception as e:
        raise CLIError(f"{path}: cannot read PyTorch checkpoint: {e}") from None

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
        raise CLIError(f"{path}: no state_dict found (expected one of {STATE_DICT_KEYS} or a bare mapping; got {keys})")

    out: dict[str, Any] = {}
    for k, v in sd.items():
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu()
            if v.is_floating_point() and v.dtype != torch.float32:
                v = v.float()
            v = v.numpy()
        out[str(k)] = v
    return out, extra


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


def build_config(report: Mapping[str, Any]):
    """configs/nvidia_ljspeech.yaml with the model dims (and n_mels) of the converted checkpoint."""
    from taco_jax.config import from_yaml_string, load_config, to_yaml

    cfg = load_config(str(NVIDIA_CONFIG))  # T2N kept NVIDIA's audio front end
    if report["layout"] in T2N_LAYOUTS:
        n_symbols = report["config"]["n_symbols"]
        if n_symbols not in T2N_SYMBOL_TABLES:
            raise CLIError(
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
    """Convert a .pt checkpoint into a taco_jax checkpoint directory; returns the conversion report."""
    import jax

    from taco_jax.checkpoint import Checkpointer
    from taco_jax.config import save_config, to_yaml, write_text_atomic
    from taco_jax.model import build_model
    from taco_jax.text import get_symbol_table
    from taco_jax.train.state import init_variables

    out = Path(out_dir)
    ckpt_dir = out / "checkpoints"
    if ckpt_dir.exists() and any(ckpt_dir.iterdir()):
        raise CLIError(f"{ckpt_dir}: already contains checkpoints; choose an empty output directory")
    state_dict, extra = load_torch_checkpoint(in_path, trust_pickle)
    params, batch_stats, report = torch_to_flax(state_dict, layout, allow_missing=allow_missing)
    cfg = build_config(report)
    table = get_symbol_table(cfg.text.symbols)
    n_symbols = report["config"]["n_symbols"]
    if n_symbols != len(table):
        raise CLIError(
            f"{in_path}: embedding.weight has {n_symbols} rows but the symbol table {table.name!r} "
            f"has {len(table)}; this checkpoint was not trained with that table"
        )
    model = build_model(cfg.model, len(table), cfg.audio.n_mels)
    r = cfg.model.n_frames_per_step
    init = lambda: init_variables(model, jax.random.PRNGKey(cfg.run.seed), cfg.audio.n_mels, r)  # noqa: E731
    want = _flatten(jax.eval_shape(init))
    got = _flatten({"params": params, "batch_stats": batch_stats})
    wrong = [f"{'/'.join(k)}: model {want[k].shape}, converted {got[k].shape}" for k in got if k in want and
             tuple(want[k].shape) != tuple(got[k].shape)]  # fmt: skip
    extra_vars = ["/".join(k) for k in got if k not in want]
    if wrong or extra_vars:
        raise CLIError(f"converted variables do not fit the taco_jax model: {'; '.join(wrong + extra_vars)}")
    filled = ["/".join(k) for k in want if k not in got]
    if filled:  # only reachable with allow_missing: take the fresh initialisation
        fresh = _flatten(jax.device_get(init()))
        got.update({k: np.asarray(fresh[k]) for k in want if k not in got})
    report["initialised"] = filled
    variables = _unflatten(got)
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
    meta = {"config": to_yaml(cfg), "symbols": table.to_dict(), "step": step, "converted_from": summary}
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, str(out / "config.yaml"))
    ckpt = Checkpointer(ckpt_dir, keep=1)
    ckpt.save(step, jax.tree.map(np.asarray, state), meta)  # orbax writes a temp dir, then renames it
    ckpt.close()
    write_text_atomic(str(out / "conversion_report.json"), json.dumps(summary, indent=2) + "\n")
    return report


def _resumable_state(cfg, model, variables, optimizer, state_dict, layout: str, step: int):
    """TrainState with the converted weights, Adam moments and step (LR schedule and Adam's count at `step`);
    controllers and the PRNG key start fresh from the config."""
    import jax
    import jax.numpy as jnp

    from taco_jax.control.build import build_tx, init_control_state
    from taco_jax.convert import torch_adam_moments
    from taco_jax.train.state import create_train_state, with_adam_moments

    optimizer = jax.tree.map(lambda x: np.asarray(x.detach().cpu()) if hasattr(x, "detach") else x, optimizer)
    mu, nu, adam_step = torch_adam_moments(optimizer, state_dict, layout)
    tx = build_tx(cfg)
    state = create_train_state(model, tx, cfg.run.seed, cfg.audio.n_mels, init_control_state(cfg))
    params = jax.tree.map(jnp.asarray, variables["params"])
    opt_state = with_adam_moments(tx.init(params), mu, nu, adam_step or step)
    return state.replace(
        step=jnp.asarray(step, jnp.int32), params=params,
        batch_stats=jax.tree.map(jnp.asarray, variables["batch_stats"]), opt_state=opt_state,
    )  # fmt: skip


def taco_jax_to_torch(in_dir: str | os.PathLike, out_path: str | os.PathLike, layout: str = "nvidia") -> Path:
    """Export a taco_jax checkpoint as {'state_dict': ...} (.pt); returns the written path."""
    import torch

    from taco_jax.checkpoint import restore_model

    _, _, variables = restore_model(in_dir)
    sd = flax_to_torch(variables["params"], variables["batch_stats"], "nvidia" if layout == "auto" else layout)
    target = Path(out_path)
    if target.is_dir():
        target = target / "tacotron2_statedict.pt"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=target.name)
    os.close(fd)
    try:
        torch.save({"state_dict": {k: torch.from_numpy(np.array(v)) for k, v in sd.items()}}, tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return target


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help=".pt checkpoint (or, with --to-torch, a taco_jax run/checkpoint directory)")
    ap.add_argument("output", help="taco_jax output directory (or, with --to-torch, the .pt file to write)")
    ap.add_argument("--layout", default="auto", choices=("auto", *LAYOUTS), help="key layout (default: detect)")
    ap.add_argument("--trust-pickle", action="store_true", help="allow full unpickling (runs code from the file)")
    ap.add_argument(
        "--allow-missing",
        action="store_true",
        help="convert despite missing/unexpected keys (missing variables are freshly initialised)",
    )
    ap.add_argument("--to-torch", action="store_true", help="export a taco_jax checkpoint to a PyTorch state_dict")
    args = ap.parse_args(argv)
    try:
        if args.to_torch:
            path = taco_jax_to_torch(args.input, args.output, args.layout)
            print(f"wrote {path}")
            return 0
        report = torch_to_taco_jax(args.input, args.output, args.layout, args.trust_pickle, args.allow_missing)
    except (CLIError, ValueError) as e:  # ConversionError, CheckpointError and ConfigError are ValueErrors
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"converted {len(report['converted'])} tensors ({report['layout']} layout) -> {args.output}")
    for kind in ("missing", "unexpected", "ignored", "initialised"):
        if report[kind]:
            print(f"  {kind} ({len(report[kind])}): {', '.join(report[kind])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
