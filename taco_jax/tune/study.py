"""A study and its workers: each trial is a normal training run in `<out_dir>/<study>/trial_NNNN/`.

`open_study` creates or reopens the study (samplers: TPE, CMA-ES, random; pruners: median, percentile,
Hyperband, none). `work` is one worker: it runs trials until the study holds `n_trials` finished ones (a trial
that failed and was retried counts once, through its retry), the deadline passes or the user interrupts. Several
workers, in this process's children or on other machines, share the study through its storage.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from taco_jax.config import Config, load_config
from taco_jax.tune.objectives import AlignmentThresholds, TrialFailed, TrialMonitor, TuneError
from taco_jax.tune.space import SearchSpace, override
from taco_jax.tune.storage import fail_dead_local_trials, mark_worker, open_storage, requeue

log = logging.getLogger("taco_jax.tune")

__all__ = [
    "TuneSettings",
    "check_settings",
    "finished_count",
    "open_study",
    "run_trial",
    "trial_alerts",
    "trial_reason",
    "work",
]

SAMPLERS = ("tpe", "cmaes", "random")
PRUNERS = ("median", "percentile", "hyperband", "none")


@dataclass
class TuneSettings:
    """Everything a worker needs; built by the command line from its options."""

    study: str
    space: SearchSpace
    config: str | None = None  # the base config file; `overrides` apply on top, then the drawn values
    overrides: Sequence[str] = ()
    out_dir: Path = Path("runs")
    objectives: tuple[str, ...] = ("val_loss",)
    n_trials: int = 20
    timeout_s: float | None = None
    sampler: str = "tpe"
    pruner: str = "median"
    seed: int | None = None
    startup_trials: int = 3  # trials the pruner and the TPE/CMA-ES samplers wait for before acting
    thresholds: AlignmentThresholds = field(default_factory=AlignmentThresholds)
    storage: str | None = None
    heartbeat_s: int = 30
    grace_s: int = 90
    max_retry: int = 2

    @property
    def study_dir(self) -> Path:
        return self.out_dir / self.study

    def base_config(self, extra: Sequence[str] = ()) -> Config:
        return load_config(self.config, [*self.overrides, *extra])


def open_study(s: TuneSettings) -> optuna.Study:
    """Creates the study or reopens it (same objectives required)."""
    storage = open_storage(s.storage, s.study_dir, s.heartbeat_s, s.grace_s, s.max_retry)
    cfg = s.base_config()
    directions = ["minimize"] * len(s.objectives)
    study = optuna.create_study(
        storage=storage, sampler=_sampler(s), pruner=_pruner(s, cfg), study_name=s.study,
        directions=directions, load_if_exists=True,
    )  # fmt: skip
    stored = study.user_attrs.get("objectives")
    if stored is not None and tuple(stored) != s.objectives:
        was, now = ",".join(stored), ",".join(s.objectives)
        raise TuneError(f"study {s.study!r} was created with --objective {was}, not {now}")
    if stored is None:
        study.set_user_attr("objectives", list(s.objectives))
        study.set_user_attr("config", s.config)
        study.set_user_attr("overrides", list(s.overrides))
        study.set_user_attr("max_steps", cfg.run.max_steps)
    return study


def _sampler(s: TuneSettings) -> optuna.samplers.BaseSampler:
    if s.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=s.seed, n_startup_trials=s.startup_trials, multivariate=True)
    if s.sampler == "cmaes":
        independent = optuna.samplers.RandomSampler(seed=s.seed)  # categorical keys: CMA-ES handles numbers only
        return optuna.samplers.CmaEsSampler(seed=s.seed, n_startup_trials=s.startup_trials,
                                            independent_sampler=independent)  # fmt: skip
    if s.sampler == "random":
        return optuna.samplers.RandomSampler(seed=s.seed)
    raise TuneError(f"--sampler {s.sampler!r}: expected one of {', '.join(SAMPLERS)}")


def _pruner(s: TuneSettings, cfg: Config) -> optuna.pruners.BasePruner:
    """Median and percentile pruners act from the first evaluation on (Optuna prunes at steps >= the warm-up),
    once `startup_trials` trials have finished; Hyperband's smallest rung is two evaluations."""
    warmup = cfg.run.eval_every
    if s.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=s.startup_trials, n_warmup_steps=warmup)
    if s.pruner == "percentile":  # keeps the best quarter at each evaluation
        return optuna.pruners.PercentilePruner(25.0, n_startup_trials=s.startup_trials, n_warmup_steps=warmup)
    if s.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=2 * warmup, max_resource=cfg.run.max_steps)
    if s.pruner == "none":
        return optuna.pruners.NopPruner()
    raise TuneError(f"--pruner {s.pruner!r}: expected one of {', '.join(PRUNERS)}")


def finished_count(study: optuna.Study) -> int:
    """Trials that ended (complete, pruned, failed), a failed one that was retried counted through its retry."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    return sum(1 for t in trials if t.state in done and t.number not in retried)


def work(s: TuneSettings, study: optuna.Study, on_trial_end: Sequence[Callable] = ()) -> None:
    """Runs trials until the study holds `s.n_trials` finished ones or `s.timeout_s` passes. Ctrl-C marks the
    running trial FAIL ("interrupted"), queues it again for the next run of the command, and re-raises."""
    deadline = time.monotonic() + s.timeout_s if s.timeout_s else math.inf
    current: dict[str, int] = {}

    def objective(trial: optuna.Trial):
        current["number"] = trial.number
        try:
            return run_trial(trial, s)
        except KeyboardInterrupt:
            trial.set_user_attr("reason", "failed: interrupted (Ctrl-C); queued again")
            raise

    while time.monotonic() < deadline:
        _fail_stale(study, s.max_retry)
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if finished_count(study) + len(running) >= s.n_trials and not waiting:
            break  # the other workers' running trials complete the count (or their retries come back WAITING)
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=list(on_trial_end),
                           gc_after_trial=True)  # fmt: skip
        except KeyboardInterrupt:
            _requeue_interrupted(study, current.get("number"), s.max_retry)
            raise


def _fail_stale(study: optuna.Study, max_retry: int) -> None:
    """Trials of dead workers -> FAIL and queued again, before this worker counts what is left to do."""
    fail_dead_local_trials(study, max_retry)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # heartbeats (database storages); their callback is `requeue`


def _requeue_interrupted(study: optuna.Study, number: int | None, max_retry: int) -> None:
    if number is None:
        return
    trial = study.get_trials(deepcopy=False)[number]
    if trial.state != TrialState.FAIL:
        return
    requeue(study, trial, max_retry)
    log.warning("trial %d interrupted: marked FAIL and queued again for the next run of the command", number)


def run_trial(trial: optuna.Trial, s: TuneSettings) -> float | list[float]:
    """One training run with the drawn values; returns the objective value(s). Raises TrialPruned when pruned
    and TrialFailed (or the training's own exception) when it fails, with the reason in user attr `reason`."""
    from taco_jax.train.host_control import TrainingDiverged
    from taco_jax.train.loop import train

    mark_worker(trial)
    drawn = [override(k, v) for k, v in s.space.suggest(trial).items()]
    trial.set_user_attr("overrides", drawn)
    name = f"trial_{trial.number:04d}"
    cfg = s.base_config([*drawn, f"run.out_dir={s.study_dir}", f"run.name={name}", "run.progress_bar=false"])
    single = len(s.objectives) == 1
    monitor = TrialMonitor(trial.report if single else None, trial.should_prune if single else None, s.thresholds)
    log.info("trial %d: %s", trial.number, " ".join(drawn))
    t0 = time.monotonic()
    try:
        result = train(cfg, callbacks=[monitor])
    except TrainingDiverged as e:
        return _fail(trial, f"failed: training diverged: {e}")
    except Exception as e:
        trial.set_user_attr("reason", f"failed: {type(e).__name__}: {_one_line(e)}")
        raise
    trial.set_user_attr("run_dir", str(result.run_dir))
    trial.set_user_attr("steps", int(result.step))
    trial.set_user_attr("wall_s", time.monotonic() - t0)
    if monitor.stop_reason is not None:
        trial.set_user_attr("reason", monitor.stop_reason)
        if monitor.stop_reason.startswith("pruned"):
            raise optuna.TrialPruned(monitor.stop_reason)
        raise TrialFailed(monitor.stop_reason)
    values = [_objective_value(name, result, monitor, cfg) for name in s.objectives]
    trial.set_user_attr("reason", "completed")
    return values[0] if single else values


def trial_alerts(post: Callable) -> Callable:
    """An Optuna trial callback posting `trial_finished` / `trial_pruned` and `new_best` alerts through `post`
    (`AlertDispatcher.post`); failures are `trial_finished` events whose text says FAIL and why."""
    from taco_jax.alerts import AlertEvent

    def on_trial_end(study: optuna.Study, trial: FrozenTrial) -> None:
        fields = {"study": study.study_name, "trial": trial.number, "state": trial.state.name,
                  "values": trial.values, "params": trial.params, "steps": trial.user_attrs.get("steps")}  # fmt: skip
        kind = "trial_pruned" if trial.state == TrialState.PRUNED else "trial_finished"
        value = f" {trial.values}" if trial.values else ""
        post(AlertEvent(kind, f"{study.study_name}: trial {trial.number} {trial.state.name}{value}: "
                              f"{trial_reason(trial)}", None, fields))  # fmt: skip
        if (
            trial.state == TrialState.COMPLETE
            and len(study.directions) == 1
            and study.best_trial.number == trial.number
        ):
            post(AlertEvent("new_best", f"{study.study_name}: new best, trial {trial.number} {trial.values}: "
                                        f"{trial.params}", None, fields))  # fmt: skip

    return on_trial_end


def _fail(trial: optuna.Trial, reason: str):
    trial.set_user_attr("reason", reason)
    raise TrialFailed(reason)


def _objective_value(name: str, result, monitor: TrialMonitor, cfg: Config) -> float:
    if name == "val_loss":
        return float(result.val_metrics["val/loss"])
    if name == "align_steps":
        return monitor.align_steps(cfg.run.max_steps, cfg.run.eval_every)
    from taco_jax.demo.quality import evaluate

    quality = evaluate(str(result.run_dir))["summary"]
    return float(quality["error_ratio"])


def check_settings(s: TuneSettings) -> None:
    """Everything that can be refused before a trial runs: the base config, the space against it, the options."""
    from taco_jax.train.controllers import build_controllers

    def check(extra: Sequence[str]) -> None:  # the config's own checks, then the controllers' eager ones
        build_controllers(s.base_config(extra))

    cfg = s.base_config()
    check([])
    s.space.validate(check)
    if "quality" in s.objectives and cfg.data.corpus != "demo":
        raise TuneError("--objective quality needs a demo corpus (data.corpus: demo): it compares with eSpeak")
    if s.n_trials < 1:
        raise TuneError(f"--trials {s.n_trials}: expected at least 1")
    for key in ("run.out_dir", "run.name"):
        if any(p.key == key for p in s.space.all_params()):
            raise TuneError(f"{s.space.path}: {key} is set per trial by the tuner and cannot be tuned")


def trial_reason(t: FrozenTrial) -> str:
    """Why a trial ended as it did (for reports)."""
    reason = t.user_attrs.get("reason") or t.system_attrs.get("fail_reason") or ""
    if t.state == TrialState.FAIL and not reason:
        return "failed: its worker stopped (no heartbeat)"
    return str(reason)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:500]
