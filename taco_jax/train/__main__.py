"""python -m taco_jax.train --config FILE [--set a.b=v ...] [--resume] [--warm-start CKPT [--ignore REGEX ...]]"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from taco_jax.config import ConfigError, load_config
from taco_jax.logging_setup import setup_logging


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m taco_jax.train",
        description="Train a Tacotron 2. Process-wide default of this command (not of the train() API): with "
        "run.retain_host_memory (on by default) glibc keeps freed memory mapped and JAX dispatches CPU work "
        "synchronously, so XLA's per-step working memory is not faulted in afresh every step.",
    )
    parser.add_argument("--config", help="YAML config (e.g. configs/demo.yaml); with --resume, defaults to the run's")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="dotted config override")
    parser.add_argument("--resume", action="store_true", help="continue the latest run of this run.name")
    parser.add_argument("--warm-start", metavar="CKPT", help="initialise parameters from a checkpoint or run")
    parser.add_argument("--ignore", action="append", default=[], metavar="REGEX", help="parameters not warm-started")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    setup_logging()
    if args.config is None and not args.resume:
        parser.error("--config is required (unless --resume)")
    try:
        cfg = load_config(args.config, args.set)
        from taco_jax.train.host_memory import retain_host_memory

        retain_host_memory(cfg.run.retain_host_memory)  # this command's default; before any JAX backend exists
        # Before any JAX computation; from this command's config/environment, never from a stored run config
        # (which holds process 0's id).
        from taco_jax.train.parallel import initialize_distributed, shutdown_distributed

        initialize_distributed(cfg.distributed)
        if args.resume:
            from taco_jax.train.loop import choose_run_dir

            stored = choose_run_dir(cfg, resume=True) / "config.yaml"
            this_process = cfg.distributed
            cfg = load_config(str(stored), args.set)  # the run's own config; --set may extend it (max_steps)
            cfg.distributed = this_process
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from taco_jax.train.loop import train

    result = train(cfg, resume=args.resume, warm_start=args.warm_start, ignore=args.ignore,
                   progress=False if args.no_progress else None)  # fmt: skip
    shutdown_distributed()
    summary = "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.val_metrics.items()))
    print(f"finished at step {result.step}; run directory {Path(result.run_dir)}\n{summary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
