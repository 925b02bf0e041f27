"""python -m taco_jax.train --config FILE [--set a.b=v ...] [--resume [RUN_DIR]] [--warm-start CKPT [--ignore RE ...]]

With `alerts.enabled`, events of the run go to Telegram and/or a webhook (taco_jax/train/alerting.py); their
secrets come from the environment, and a missing one stops the command before training starts.

Every error is one line on stderr: `error: ...` with exit status 2 for errors in the input (config, data,
checkpoints, the run directory), 1 for a diverged run or a bug (whose traceback is in the run's train.log).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from taco_jax.train.cli import RESUME_LATEST, add_run_arguments, print_finished, run_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m taco_jax.train",
        description="Train a Tacotron 2. Process-wide default of this command (not of the train() API): with "
        "run.retain_host_memory (on by default) glibc keeps freed memory mapped and JAX dispatches CPU work "
        "synchronously, so XLA's per-step working memory is not faulted in afresh every step.",
    )
    add_run_arguments(parser, "configs/demo.yaml")
    parser.add_argument("--warm-start", metavar="CKPT", help="initialise parameters from a checkpoint or run")
    parser.add_argument("--ignore", action="append", default=[], metavar="REGEX", help="parameters not warm-started")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_parser(), argv, _train, "training")


def _train(args: argparse.Namespace) -> int:
    from taco_jax.config import load_config
    from taco_jax.train.host_memory import retain_host_memory
    from taco_jax.train.parallel import initialize_distributed, shutdown_distributed

    cfg = load_config(args.config, args.set)
    retain_host_memory(cfg.run.retain_host_memory)  # this command's default; before any JAX backend exists
    # Before any JAX computation; from this command's config/environment, never from a stored run config
    # (which holds process 0's id).
    initialize_distributed(cfg.distributed)
    resume: bool | str = False
    if args.resume is not None:
        from taco_jax.train.run_dir import choose_run_dir, existing_run_dir

        latest = args.resume == RESUME_LATEST
        run_dir = existing_run_dir(choose_run_dir(cfg, resume=True) if latest else args.resume)
        this_process = cfg.distributed
        cfg = load_config(str(run_dir / "config.yaml"), args.set)  # the run's own; --set may extend it (max_steps)
        cfg.distributed = this_process
        resume = str(run_dir)
    from taco_jax.train.alerting import train_with_alerts  # train() itself when alerts.enabled is off

    result = train_with_alerts(cfg, resume=resume, warm_start=args.warm_start, ignore=args.ignore,
                               progress=False if args.no_progress else None)  # fmt: skip
    shutdown_distributed()
    print_finished(result.step, result.run_dir, result.val_metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
