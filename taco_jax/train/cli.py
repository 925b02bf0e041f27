"""What the two training commands (`python -m taco_jax.train`, `python -m taco_jax.train_vocoder`) share on the
command line: the --config / --set / --resume arguments, the rules between them and the closing summary.

Kept free of JAX and of the trainers so that parsing the arguments stays fast.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from taco_jax.errors import report_error
from taco_jax.logging_setup import setup_logging

__all__ = ["RESUME_LATEST", "add_run_arguments", "print_finished", "run_command"]

RESUME_LATEST = "latest"  # --resume without a RUN_DIR: the latest run of --config's run.name


def add_run_arguments(parser: argparse.ArgumentParser, example_config: str) -> None:
    """Adds --config (help naming `example_config`), --set KEY=VALUE (repeatable) and --resume [RUN_DIR]."""
    parser.add_argument("--config", help=f"YAML config (e.g. {example_config})")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config override")
    parser.add_argument(
        "--resume", nargs="?", const=RESUME_LATEST, metavar="RUN_DIR",
        help="continue a run: RUN_DIR, or without it the latest run of --config's run.name",
    )  # fmt: skip


def run_command(
    parser: argparse.ArgumentParser,
    argv: Sequence[str] | None,
    command: Callable[[argparse.Namespace], int],
    stage: str,
) -> int:
    """A training command's `main`: parse `argv` with `parser` (made with `add_run_arguments`), check the
    arguments, set up console logging and run `command(args)`; returns its exit status, or `report_error`'s
    (one line on stderr naming `stage`) for whatever it raises. Bad arguments exit through `parser.error`."""
    args = parser.parse_args(argv)
    setup_logging()
    _check_run_arguments(parser, args)
    try:
        return command(args)
    except BaseException as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage=stage)


def _check_run_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Exits through `parser.error` (status 2, usage on stderr) unless exactly one source of the config is given:
    --config, --config with a bare --resume, or --resume RUN_DIR (whose config.yaml is the run's own)."""
    if args.resume is None and args.config is None:
        parser.error("--config is required (or --resume RUN_DIR)")
    if args.resume == RESUME_LATEST and args.config is None:
        parser.error("--resume needs --config FILE (to continue the latest run of its run.name) or a run directory")
    if args.resume not in (None, RESUME_LATEST) and args.config is not None:
        parser.error("--resume RUN_DIR continues that run with its own config.yaml: leave out --config")


def print_finished(step: int, run_dir: str | Path, val_metrics: Mapping[str, float]) -> None:
    """The commands' last lines on stdout: the final step, the run directory and the last validation metrics."""
    summary = "  ".join(f"{k}={v:.4f}" for k, v in sorted(val_metrics.items()))
    print(f"finished at step {step}; run directory {Path(run_dir)}\n{summary}")
