"""python -m taco_jax.tune --config FILE --space SPACE.yaml --study NAME [--storage URL] [--trials N] [--workers K]
[--timeout S] [--objective val_loss|align_steps|quality[,...]] [--sampler tpe|cmaes|random]
[--pruner median|percentile|hyperband|none] [--set KEY=VALUE ...]

python -m taco_jax.tune --study NAME [--storage URL] --report

Rerunning the same command resumes the study. Process-wide defaults of this command: each worker applies
`run.retain_host_memory` as `python -m taco_jax.train` does, and with `--workers K` each of the K worker processes
is pinned to its own share of this machine's cores.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from taco_jax.errors import report_error
from taco_jax.logging_setup import setup_logging

log = logging.getLogger("taco_jax.tune")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m taco_jax.tune", description="Hyperparameter search with Optuna.")
    p.add_argument("--study", required=True, help="study name; its runs go to OUT_DIR/NAME/")
    p.add_argument("--config", help="base YAML config of every trial")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted override of the base")
    p.add_argument("--space", help="search space YAML (config keys -> distributions)")
    p.add_argument("--storage", help="database URL, 'journal' or 'journal:PATH' (default: SQLite in the study "
                   "directory; or the environment variable TACO_JAX_TUNE_STORAGE)")  # fmt: skip
    p.add_argument("--out-dir", default="runs", help="where the study directory goes (default: runs)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default: 20)")
    p.add_argument("--workers", type=int, default=1, help="worker processes on this machine (default: 1)")
    p.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    p.add_argument("--objective", default="val_loss", help="val_loss (default), align_steps, quality, or several")
    p.add_argument("--sampler", default="tpe", help="tpe (default), cmaes or random")
    p.add_argument("--pruner", default="median", help="median (default), percentile, hyperband or none")
    p.add_argument("--seed", type=int, help="sampler seed")
    p.add_argument("--startup-trials", type=int, default=3, help="trials before the sampler and pruner act")
    p.add_argument("--align-diag", type=float, default=0.8, help="val/align_diag at which alignment holds")
    p.add_argument("--align-focus", type=float, default=0.5, help="val/align_focus at which alignment holds")
    p.add_argument("--heartbeat", type=int, default=30, help="database storages: seconds between heartbeats")
    p.add_argument("--grace", type=int, default=90, help="seconds without a heartbeat before a trial is failed")
    p.add_argument("--max-retry", type=int, default=2, help="retries of a trial whose worker died")
    p.add_argument("--report", action="store_true", help="only write and print the study's report")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # the index of a child started by --workers
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(argv)
    setup_logging()
    try:
        return _tune(args, argv)
    except BaseException as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage="tuning")


def _settings(args: argparse.Namespace):
    from taco_jax.tune.objectives import AlignmentThresholds, TuneError, parse_objectives
    from taco_jax.tune.space import load_space
    from taco_jax.tune.study import TuneSettings

    if args.space is None:
        raise TuneError("--space SPACE.yaml is required (unless --report)")
    return TuneSettings(
        study=args.study, space=load_space(args.space), config=args.config, overrides=args.set,
        out_dir=Path(args.out_dir), objectives=parse_objectives(args.objective), n_trials=args.trials,
        timeout_s=args.timeout, sampler=args.sampler, pruner=args.pruner, seed=_worker_seed(args),
        startup_trials=args.startup_trials, thresholds=AlignmentThresholds(args.align_diag, args.align_focus),
        storage=args.storage, heartbeat_s=args.heartbeat, grace_s=args.grace, max_retry=args.max_retry,
    )  # fmt: skip


def _worker_seed(args: argparse.Namespace) -> int | None:
    """Each worker its own sampler seed: with one seed, parallel workers would draw the same values."""
    if args.seed is None:
        return None
    return args.seed + (args.worker or 0)


def _tune(args: argparse.Namespace, argv: list[str]) -> int:
    import optuna

    from taco_jax.alerts import build_dispatcher
    from taco_jax.tune.storage import open_storage
    from taco_jax.tune.study import check_settings, open_study, trial_alerts, work

    if args.report:
        storage = open_storage(args.storage, Path(args.out_dir) / args.study, args.heartbeat, args.grace, 0)
        study = optuna.load_study(study_name=args.study, storage=storage)
        return _print_report(study, Path(args.out_dir) / args.study)
    s = _settings(args)
    parent = args.workers > 1 and args.worker is None
    if not parent:
        from taco_jax.train.host_memory import retain_host_memory

        retain_host_memory(s.base_config().run.retain_host_memory)  # before any JAX backend exists
    check_settings(s)
    study = open_study(s)
    alerts = None if parent else build_dispatcher(s.base_config().alerts)  # checks the secrets before any trial
    on_trial_end = [_log_trial_end] + ([trial_alerts(alerts.post)] if alerts is not None else [])
    try:
        if parent:
            _run_workers(argv, args.workers)
        else:
            work(s, study, on_trial_end=on_trial_end)
    except KeyboardInterrupt:
        log.warning("interrupted: the study stays in its storage; rerun the same command to go on")
        if args.worker is None:
            _print_report(study, s.study_dir)
        raise
    finally:
        if alerts is not None:
            alerts.close(s.base_config().alerts.timeout_s)
    return 0 if args.worker is not None else _print_report(study, s.study_dir)


def _run_workers(argv: list[str], k: int) -> None:
    """K copies of this command as workers (each on its own cores), waited for; Ctrl-C reaches them too."""
    cpus = sorted(os.sched_getaffinity(0))
    per = max(1, len(cpus) // k)
    procs = []
    for i in range(k):
        mine = cpus[(i * per) % len(cpus) :][:per]
        log.info("worker %d of %d on cores %s", i + 1, k, mine)
        cmd = [sys.executable, "-m", "taco_jax.tune", *argv, "--worker", str(i)]
        procs.append(subprocess.Popen(cmd, preexec_fn=lambda m=mine: os.sched_setaffinity(0, m)))  # noqa: PLW1509
    try:
        codes = [p.wait() for p in procs]
    except KeyboardInterrupt:
        for p in procs:
            p.send_signal(signal.SIGINT)
        for p in procs:
            p.wait()
        raise
    if any(codes):
        log.warning("worker exit statuses: %s", codes)


def _log_trial_end(study, trial) -> None:
    from taco_jax.tune.study import trial_reason

    value = f" value {trial.values}" if trial.values else ""
    log.info("trial %d %s%s after %s steps: %s", trial.number, trial.state.name, value,
             trial.user_attrs.get("steps", "?"), trial_reason(trial))  # fmt: skip


def _print_report(study, study_dir: Path) -> int:
    from taco_jax.tune.report import write_report

    r = write_report(study, study_dir)
    p = r["pruning"]
    print(f"study {r['study']}: {r['trials']}; pruning saved about {p['seconds_saved']:.0f} s ({p['share_saved']:.0%} "
          f"of the trial time it would have taken; {p['steps_not_run']} steps not run)")  # fmt: skip
    for b in r["best"]:
        print(f"best: trial {b['number']} values {b['values']} {b['params']} -> {b['config']}")
    if r["importances"]:
        print(f"parameter importances: {r['importances']}")
    print(f"report: {study_dir / 'report'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
