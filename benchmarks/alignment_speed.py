"""How fast does the demo model learn alignment with no, fixed or adaptive guided attention?

    python benchmarks/alignment_speed.py [--config configs/demo.yaml] [--seeds 1 2 3] [--max-steps 600]
        [--eval-every 50] [--settings none fixed_x0.1 ... adaptive_x10] [--jobs 2] [--set KEY=VALUE ...]
        [--out runs/alignment_speed]

Settings (W = the config's loss.guided_attention.weight):
  none            guided attention off
  fixed_xF        constant GA weight F x W, no controller           (F in 0.1, 1, 10)
  adaptive_xF     the GA-weight controller started from F x W       (control.ga_weight.enabled)

Each (setting, seed) trains in its own process (`python -m taco_jax.train`, no progress bar, no audio
samples) into <out>/<setting>_s<seed>, evaluating every --eval-every steps. A run that already has
final_metrics.json is not trained again, so an interrupted sweep resumes; one that ended before --max-steps
is extended with `--resume` (the controllers' state continues exactly). The run directories are the record:
the table is rebuilt from every finished run under <out>. Reported per run: the first
evaluated step with val/align_diag >= 0.8 and val/align_focus >= 0.6 ("steps to align"), the final
validation diagonality and focus, and the free-running DTW error ratio of benchmarks/demo_quality.py on the
final checkpoint (lower is better). With --jobs 2 two runs train at once, each pinned to its own core
(the decoder's sequential scan does not use two cores well). The summary table is printed and written to
<out>/summary.md, the raw numbers to <out>/results.json.

The target: from every start the adaptive controller aligns within 1.5x the steps of the best
fixed weight, and its final DTW ratio is no worse than that weight's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

DIAG_TARGET = 0.8
FOCUS_TARGET = 0.6
FACTORS = {"x0.1": 0.1, "x1": 1.0, "x10": 10.0}
SETTINGS = ["none"] + [f"fixed_{k}" for k in FACTORS] + [f"adaptive_{k}" for k in FACTORS]


def setting_overrides(setting: str, base_weight: float) -> list[str]:
    if setting == "none":
        return ["loss.guided_attention.enabled=false", "control.ga_weight.enabled=false"]
    kind, factor = setting.split("_", 1)
    if kind not in ("fixed", "adaptive") or factor not in FACTORS:
        raise ValueError(f"unknown setting {setting!r}; choose from {SETTINGS}")
    return [
        "loss.guided_attention.enabled=true",
        "loss.guided_attention.schedule=constant",
        f"loss.guided_attention.weight={FACTORS[factor] * base_weight:g}",
        f"control.ga_weight.enabled={'true' if kind == 'adaptive' else 'false'}",
    ]


def steps_to_align(metrics_path: Path) -> tuple[int | None, int | None, dict[str, float]]:
    """First evaluated step meeting both targets, first step from which every later evaluation meets them
    (alignment held, not a passing swing), each None if never, and the last validation record."""
    first, held, last = None, None, {}
    with open(metrics_path) as f:
        for line in f:
            rec = json.loads(line)
            if "val/align_diag" not in rec:
                continue
            last = rec
            diag, focus = rec.get("val/align_diag"), rec.get("val/align_focus")
            if diag is not None and focus is not None and diag >= DIAG_TARGET and focus >= FOCUS_TARGET:
                first = int(rec["step"]) if first is None else first
                held = int(rec["step"]) if held is None else held
            else:
                held = None
    return first, held, last


def run_command(args, setting: str, seed: int, base_weight: float) -> tuple[list[str], Path]:
    run_dir = Path(args.out) / f"{setting}_s{seed}"
    overrides = [
        f"run.name={run_dir.name}",
        f"run.out_dir={run_dir.parent}",
        f"run.seed={seed}",
        f"run.max_steps={args.max_steps}",
        f"run.eval_every={args.eval_every}",
        "run.sample_sentences=[]",
        "run.progress_bar=false",
        *setting_overrides(setting, base_weight),
        *args.set,
    ]
    cmd = [sys.executable, "-m", "taco_jax.train", "--config", args.config, "--no-progress"]
    for o in overrides:
        cmd += ["--set", o]
    return cmd, run_dir


def launch(cmd: list[str], run_dir: Path, core: int | None) -> subprocess.Popen:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = open(f"{run_dir}.log", "w")  # noqa: SIM115 — closed with the process
    pin = (lambda: os.sched_setaffinity(0, {core})) if core is not None else None
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, preexec_fn=pin)


def measure_quality(run_dir: Path) -> None:
    """Free-running DTW quality of the run's last checkpoint -> <run_dir>/demo_quality.json.

    demo_quality runs in its own process: this one never imports JAX, so forking the next run is safe.
    """
    script = Path(__file__).with_name("demo_quality.py")
    cmd = [sys.executable, str(script), "--checkpoint", str(run_dir), "--json", str(run_dir / "demo_quality.json")]
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL)  # exit 1 = "did not pass", still measured


def collect(run_dir: Path) -> dict | None:
    """One finished run's numbers, read back from its directory (None if it has not finished)."""
    quality_json = run_dir / "demo_quality.json"
    if not (run_dir / "final_metrics.json").exists() or not quality_json.exists():
        return None
    quality = json.loads(quality_json.read_text())["summary"]
    first, held, last = steps_to_align(run_dir / "metrics.jsonl")
    return {
        "steps_to_align": first,
        "steps_to_hold": held,
        "final_step": last.get("step"),
        "final_val_diag": last.get("val/align_diag"),
        "final_val_focus": last.get("val/align_focus"),
        "final_val_loss": last.get("val/loss"),
        "dtw_ratio": quality["error_ratio"],
        "stopped": quality["stopped"],
        "lengths_ok": quality["length_within_tolerance"],
    }


def collect_all(out: Path, references: tuple[Path, ...] = ()) -> dict[str, dict[str, dict]]:
    """{setting: {seed: numbers}} for every finished run under `out` (the run directories are the record),
    plus the fixed-weight runs under `references` that `out` does not have (a shared baseline)."""
    results: dict[str, dict[str, dict]] = {}
    for setting in SETTINGS:
        dirs = [out, *references] if setting.startswith("fixed_") else [out]
        for run_dir in (p for d in dirs for p in sorted(d.glob(f"{setting}_s*"))):  # `out` first
            seed = run_dir.name.rsplit("_s", 1)[1]
            if seed in results.get(setting, {}):
                continue
            if run_dir.is_dir() and seed.isdigit() and (res := collect(run_dir)) is not None:
                results.setdefault(setting, {})[seed] = res
    return results


STEP_KEYS = ("steps_to_align", "steps_to_hold")


def fmt_steps(steps: list[float], max_steps: int | None = None) -> str:
    """Steps for the table: '-' (or '>max_steps') where a run never aligned."""
    never = "-" if max_steps is None else f">{max_steps}"
    return ", ".join(never if s == float("inf") else f"{s:g}" for s in steps)


def summarize(results: dict[str, dict[str, dict]], max_steps: int) -> str:
    def med(values):
        return statistics.median(values) if values else None

    rows, steps_by = [], {}
    for setting in SETTINGS:
        runs = results.get(setting)
        if not runs:
            continue
        # A run that never aligns counts as "more than max_steps" in the median.
        steps, held = ([float("inf") if r[k] is None else r[k] for r in runs.values()] for k in STEP_KEYS)
        steps_by[setting] = med(steps)
        m, mh = steps_by[setting], med(held)
        rows.append(
            f"| {setting} | {', '.join(runs)} | {fmt_steps(steps)} | {fmt_steps([m], max_steps)} | "
            f"{fmt_steps(held)} | {fmt_steps([mh], max_steps)} | "
            f"{med([r['final_val_diag'] for r in runs.values()]):.3f} | "
            f"{med([r['final_val_focus'] for r in runs.values()]):.3f} | "
            f"{med([r['dtw_ratio'] for r in runs.values()]):.3f} |"
        )
    head = (
        f"| setting | seeds | steps to diag>={DIAG_TARGET} & focus>={FOCUS_TARGET} (per seed) | median | "
        "held from (per seed) | median | final val diag | final val focus | DTW ratio |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )
    lines = [head, *rows]
    fixed = {s: v for s, v in steps_by.items() if s.startswith("fixed_")}
    if fixed:
        # The strict reading of "the best fixed weight": the fastest one for the step limit and the one with the
        # best free-running quality for the DTW bound (they need not be the same weight).
        dtw_by = {s: med([r["dtw_ratio"] for r in results[s].values()]) for s in results}
        fastest = min(fixed, key=lambda s: (fixed[s], dtw_by[s]))
        finest = min(fixed, key=lambda s: dtw_by[s])
        limit, bound = 1.5 * fixed[fastest], dtw_by[finest]
        lines.append(
            f"\nfastest fixed weight: {fastest} (median steps {fixed[fastest]:g}, limit 1.5x = {limit:g}); "
            f"best quality: {finest} (median DTW ratio {bound:.3f})"
        )
        for s, v in steps_by.items():
            if s.startswith("adaptive_"):
                ok_steps = v != float("inf") and v <= limit  # never aligned is never ok
                ok_dtw = dtw_by[s] <= bound
                lines.append(
                    f"{s}: steps {fmt_steps([v], max_steps)} vs {limit:g} -> {'ok' if ok_steps else 'SLOWER'}; "
                    f"DTW {dtw_by[s]:.3f} vs {bound:.3f} -> {'ok' if ok_dtw else 'WORSE'}"
                )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--settings", nargs="+", default=SETTINGS, choices=SETTINGS)
    parser.add_argument("--max-steps", type=int, default=600)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=1, help="runs at once, each pinned to one core")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override for every run")
    parser.add_argument("--out", default="runs/alignment_speed")
    parser.add_argument(
        "--reference", nargs="*", default=[], metavar="DIR", help="also take fixed-weight runs from these sweeps"
    )
    args = parser.parse_args(argv)

    from taco_jax.config import load_config  # OmegaConf only: no JAX in this process

    base_weight = load_config(args.config, args.set).loss.guided_attention.weight
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    todo = [(s, seed) for seed in args.seeds for s in args.settings]
    running: list[tuple[subprocess.Popen, str, int, Path, int | None]] = []
    free_cores = list(range(args.jobs)) if args.jobs > 1 else [None]

    while todo or running:
        while todo and free_cores:
            setting, seed = todo.pop(0)
            cmd, run_dir = run_command(args, setting, seed, base_weight)
            if (run_dir / "final_metrics.json").exists() and not (run_dir / "demo_quality.json").exists():
                measure_quality(run_dir)  # trained, but the quality measurement was interrupted
            done = collect(run_dir)
            if done is not None:
                if done["final_step"] >= args.max_steps:
                    continue
                cmd.append("--resume")  # extend a finished run to --max-steps; controllers continue bitwise
            elif run_dir.exists():  # an interrupted run: start it again (train would pick <name>-2)
                shutil.rmtree(run_dir)
            core = free_cores.pop(0)
            print(f"start {setting} seed {seed}" + (f" on core {core}" if core is not None else ""), flush=True)
            running.append((launch(cmd, run_dir, core), setting, seed, run_dir, core))
        time.sleep(2)
        for item in list(running):
            proc, setting, seed, run_dir, core = item
            if proc.poll() is None:
                continue
            running.remove(item)
            free_cores.append(core)
            if proc.returncode != 0:
                print(f"{setting} seed {seed}: training failed (exit {proc.returncode}); see {run_dir}.log", flush=True)
                continue
            measure_quality(run_dir)
            print(f"{setting} seed {seed}: {json.dumps(collect(run_dir))}", flush=True)

    results = collect_all(out, tuple(Path(d) for d in args.reference))
    (out / "results.json").write_text(json.dumps(results, indent=2))
    table = summarize(results, args.max_steps)
    (out / "summary.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
