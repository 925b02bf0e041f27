"""Do two commits train bitwise the same? The demo with every controller switched on, hashed after N steps.

    python benchmarks/controller_parity.py --out /tmp/parity_new --json /tmp/parity_new.json
    python benchmarks/controller_parity.py --out /tmp/parity_old --json /tmp/parity_old.json   # at the other commit
    python benchmarks/controller_parity.py --compare /tmp/parity_old.json /tmp/parity_new.json

Runs `python -m taco_jax.train` on configs/demo.yaml for `--steps` optimizer steps with the guided-attention
weight, adaptive clip, LR plateau, non-finite guard, phase machine, early stopping and gradient accumulation all
on (thresholds lowered so that each of them acts within the run), evaluating every 10 steps, then restores the
final checkpoint through the public `taco_jax.checkpoint.restore_model` and prints one JSON line: the SHA-256 of
every parameter and batch statistic (bytes, in path order) and one digest per array. Only the CLI and
`restore_model` are used, so the script runs unchanged at older commits.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

OVERRIDES = (
    "control.ga_weight.enabled=true",
    "control.clip.enabled=true",
    "control.clip.min_history=5",
    "control.lr_plateau.enabled=true",
    "control.lr_plateau.accumulation=5",
    "control.lr_plateau.patience=2",
    "control.nonfinite.enabled=true",
    "control.phase.enabled=true",
    "control.phase.align_start=0.05",
    "control.phase.patience=1",
    "control.early_stopping.enabled=true",
    "control.early_stopping.patience=3",
    "control.accumulate_steps=2",
    "run.eval_every=10",
    "run.sample_sentences=[]",
    "run.progress_bar=false",
)


def train(out: Path, steps: int, config: str) -> Path:
    """Runs the trainer into `out`/parity; returns the final step's checkpoint directory."""
    sets = [*OVERRIDES, f"run.max_steps={steps}", f"run.out_dir={out}", "run.name=parity"]
    cmd = [sys.executable, "-m", "taco_jax.train", "--config", config]
    for s in sets:
        cmd += ["--set", s]
    subprocess.run(cmd, check=True, env=os.environ | {"JAX_PLATFORMS": "cpu"})
    return out / "parity" / "checkpoints" / str(steps)


def digest(ckpt: Path) -> dict:
    from jax.tree_util import keystr, tree_leaves_with_path

    from taco_jax.checkpoint import restore_model

    _, _, variables = restore_model(ckpt)
    total = hashlib.sha256()
    leaves = {}
    for path, leaf in tree_leaves_with_path(variables):
        data = np.ascontiguousarray(np.asarray(leaf)).tobytes()
        total.update(data)
        leaves[keystr(path)] = hashlib.sha256(data).hexdigest()[:16]
    return {"checkpoint": str(ckpt), "sha256": total.hexdigest(), "n_arrays": len(leaves), "arrays": leaves}


def compare(a_path: str, b_path: str) -> int:
    a, b = (json.loads(Path(p).read_text()) for p in (a_path, b_path))
    differing = sorted(k for k in a["arrays"].keys() | b["arrays"].keys() if a["arrays"].get(k) != b["arrays"].get(k))
    print(json.dumps({"identical": not differing and a["sha256"] == b["sha256"], "differing_arrays": differing}))
    return 0 if not differing else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/taco_jax_parity", help="run directory parent (new, or emptied)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--json", help="also write the result here")
    parser.add_argument("--compare", nargs=2, metavar=("A.json", "B.json"), help="compare two earlier results")
    args = parser.parse_args()
    if args.compare:
        return compare(*args.compare)
    out = Path(args.out)
    if (out / "parity").exists():
        raise SystemExit(f"error: {out / 'parity'} exists; choose an empty --out")
    result = {"steps": args.steps, "overrides": list(OVERRIDES), **digest(train(out, args.steps, args.config))}
    line = json.dumps(result)
    if args.json:
        Path(args.json).write_text(line + "\n")
    print(json.dumps({k: result[k] for k in ("steps", "checkpoint", "sha256", "n_arrays")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
