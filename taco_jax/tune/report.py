"""A study's report: trial counts and reasons, the time pruning saved, the best trial(s), parameter importances,
the best config as a ready YAML, and plots (optimisation history, importances, intermediate values or the Pareto
front) as PNG files, all in `<out_dir>/<study>/report/`."""

from __future__ import annotations

import json
import logging
import math
import os
import statistics
import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from taco_jax.config import load_config, save_config
from taco_jax.files import write_text_atomic
from taco_jax.tune.study import trial_reason

log = logging.getLogger("taco_jax.tune")

__all__ = ["pruning_savings", "write_report"]


def pruning_savings(trials: list[FrozenTrial], max_steps: int) -> dict:
    """What pruning saved: each pruned trial would have taken about as long as the median complete trial (whose
    wall time, like the pruned one's, includes its compilations), so it saved that minus its own wall time.
    `seconds_spent` is the wall time of all complete and pruned trials (workers in parallel add up)."""
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.user_attrs.get("wall_s") is not None]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("wall_s") is not None]
    full_s = statistics.median(t.user_attrs["wall_s"] for t in complete) if complete else math.nan
    saved_s = sum(max(0.0, full_s - t.user_attrs["wall_s"]) for t in pruned) if complete else math.nan
    spent_s = sum(float(t.user_attrs["wall_s"]) for t in pruned + complete)
    return {
        "pruned_trials": len(pruned),
        "steps_not_run": int(sum(max_steps - int(t.user_attrs.get("steps", max_steps)) for t in pruned)),
        "median_complete_trial_s": float(full_s),
        "seconds_saved": float(saved_s),
        "seconds_spent": float(spent_s),
        "share_saved": float(saved_s / (saved_s + spent_s)) if saved_s + spent_s > 0 else math.nan,
    }


def write_report(study: optuna.Study, study_dir: Path) -> dict:
    """Writes report.json, best.yaml (or best_<n>.yaml per Pareto trial) and the plots; returns the report."""
    out = study_dir / "report"
    out.mkdir(parents=True, exist_ok=True)
    trials = study.get_trials(deepcopy=False)
    objectives = study.user_attrs.get("objectives", ["value"])
    max_steps = int(study.user_attrs.get("max_steps", 0))
    states = {s.name: sum(1 for t in trials if t.state == s) for s in TrialState}
    report = {
        "study": study.study_name,
        "objectives": objectives,
        "trials": {k: v for k, v in states.items() if v},
        "pruning": pruning_savings(list(trials), max_steps),
        "trial_table": [_row(t) for t in trials],
        "best": [],
        "importances": {},
    }
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    if complete:
        best = study.best_trials if len(objectives) > 1 else [study.best_trial]
        for i, t in enumerate(best):
            name = "best.yaml" if len(best) == 1 else f"best_{i}.yaml"
            config_path = _write_best_config(study, t, out / name)
            report["best"].append(_row(t) | {"config": config_path})
        report["importances"] = _importances(study, len(objectives))
    _plots(study, out, len(objectives), bool(complete))
    write_text_atomic(out / "report.json", json.dumps(report, indent=2))
    return report


def _row(t: FrozenTrial) -> dict:
    return {
        "number": t.number,
        "state": t.state.name,
        "values": t.values,
        "params": t.params,
        "steps": t.user_attrs.get("steps"),
        "wall_s": t.user_attrs.get("wall_s"),
        "reason": trial_reason(t),
        "run_dir": t.user_attrs.get("run_dir"),
        "retry_of": t.system_attrs.get("failed_trial"),
    }


def _write_best_config(study: optuna.Study, t: FrozenTrial, path: Path) -> str:
    """The base config with the trial's values: ready for `python -m taco_jax.train --config PATH`."""
    name = f"{study.study_name}_best" if path.name == "best.yaml" else f"{study.study_name}_{path.stem}"
    overrides = [*study.user_attrs.get("overrides", []), *t.user_attrs.get("overrides", []), f"run.name={name}"]
    cfg = load_config(study.user_attrs.get("config"), overrides)
    save_config(cfg, str(path))
    return str(path)


def _importances(study: optuna.Study, n_objectives: int) -> dict:
    """fANOVA importances (per objective); empty with a note when the study cannot give them yet."""
    result = {}
    for i in range(n_objectives):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                target = None if n_objectives == 1 else (lambda t, i=i: t.values[i])
                result[str(i)] = optuna.importance.get_param_importances(study, target=target)
        except (RuntimeError, ValueError) as e:  # fewer than two complete trials, or nothing varied
            log.info("no parameter importances yet: %s", e)
            return {}
    return result if n_objectives > 1 else result.get("0", {})


def _plots(study: optuna.Study, out: Path, n_objectives: int, any_complete: bool) -> None:
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as plots

    wanted = {"intermediate_values": plots.plot_intermediate_values}
    if any_complete and n_objectives == 1:
        wanted |= {"optimization_history": plots.plot_optimization_history,
                   "importances": plots.plot_param_importances}  # fmt: skip
    elif any_complete:
        wanted |= {"pareto_front": plots.plot_pareto_front}
    for name, plot in wanted.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
                ax = plot(study)
        except (RuntimeError, ValueError) as e:
            log.info("no %s plot: %s", name, e)
            continue
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).figure
        tmp = out / f".{name}.png.tmp"
        fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight")
        os.replace(tmp, out / f"{name}.png")
        plt.close(fig)
