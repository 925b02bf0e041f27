"""Does a study's best config reproduce its trial's objective? Retrains `report/best.yaml` and measures the noise.

    python benchmarks/tune_reproduce.py --study-dir runs/tune_demo [--seeds 0 1 2] [--jobs 2] [--json OUT]

Each seed is a fresh `python -m taco_jax.train --config <study>/report/best.yaml --set run.seed=S` run, `--jobs`
at a time, each pinned to its own share of the cores as the tuner's workers are. The best config's own seed
retrains the trial itself; the other seeds give the run-to-run noise (the spread of the final val/loss across
seeds). Reproduced: the same-seed retrain is within two standard deviations of the seeds' spread from the
trial's objective.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _train(config: Path, seed: int, out_dir: Path, cores: list[int]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "taco_jax.train", "--config", str(config), "--no-progress",
           "--set", f"run.seed={seed}", "--set", f"run.out_dir={out_dir}", "--set", f"run.name=seed{seed}"]  # fmt: skip
    log = open(out_dir / f"seed{seed}.log", "w")  # noqa: SIM115 — closed with the process
    return subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=lambda: os.sched_setaffinity(0, cores))  # noqa: PLW1509  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--study-dir", required=True)
    p.add_argument("--seeds", type=int, nargs="+", help="default: the best config's seed and two more")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--json")
    args = p.parse_args(argv)
    study_dir = Path(args.study_dir)
    report = json.loads((study_dir / "report" / "report.json").read_text())
    best = report["best"][0]
    config = Path(best["config"])
    from taco_jax.config import load_config

    own_seed = load_config(str(config)).run.seed
    seeds = args.seeds or [own_seed, own_seed + 1, own_seed + 2]
    out_dir = study_dir / "reproduce"
    out_dir.mkdir(exist_ok=True)
    cpus = sorted(os.sched_getaffinity(0))
    per = max(1, len(cpus) // args.jobs)
    finals: dict[int, float] = {}
    for start in range(0, len(seeds), args.jobs):
        batch = seeds[start : start + args.jobs]
        procs = [(s, _train(config, s, out_dir, cpus[i * per : (i + 1) * per])) for i, s in enumerate(batch)]
        for seed, proc in procs:
            if proc.wait() != 0:
                print(f"seed {seed}: training failed (see {out_dir}/seed{seed}.log)")
                return 1
            finals[seed] = json.loads((out_dir / f"seed{seed}" / "final_metrics.json").read_text())["val/loss"]
    trial_value = best["values"][0]
    spread = statistics.stdev(finals.values()) if len(finals) > 1 else float("nan")
    same = finals.get(own_seed)
    result = {
        "trial": best["number"], "trial_val_loss": trial_value, "retrained": finals, "noise_std": spread,
        "same_seed_difference": None if same is None else same - trial_value,
        "reproduced": None if same is None else abs(same - trial_value) <= 2 * spread,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
