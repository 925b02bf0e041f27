"""python -m taco_jax.train_vocoder --config FILE [--set a.b=v ...] [--resume [RUN_DIR]]

Trains (or fine-tunes, with `init.generator`) a HiFi-GAN vocoder: configs/vocoder_demo.yaml on the embedded demo
corpus, configs/vocoder_finetune.yaml on a Tacotron's teacher-forced mels. Every error is one line on stderr:
`error: ...` with exit status 2 for errors in the input (config, data, checkpoints, the run directory), 1 for a
bug (whose traceback is in the run's train.log).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from taco_jax.train.cli import RESUME_LATEST, add_run_arguments, print_finished, run_command


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m taco_jax.train_vocoder", description="Train a HiFi-GAN vocoder.")
    add_run_arguments(parser, "configs/vocoder_demo.yaml")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_parser(), argv, _train, "vocoder training")


def _train(args: argparse.Namespace) -> int:
    from taco_jax.train.run_dir import choose_run_dir, existing_run_dir
    from taco_jax.train_vocoder.config import load_vocoder_train_config
    from taco_jax.train_vocoder.loop import train_vocoder

    resume: bool | str = False
    if args.resume is not None:
        if args.resume == RESUME_LATEST:
            run_dir = choose_run_dir(load_vocoder_train_config(args.config, args.set), resume=True)
        else:
            run_dir = existing_run_dir(args.resume)
        cfg = load_vocoder_train_config(run_dir / "config.yaml", args.set)  # the run's own; --set may extend it
        resume = str(run_dir)
    else:
        cfg = load_vocoder_train_config(args.config, args.set)
    result = train_vocoder(cfg, resume=resume, progress=False if args.no_progress else None)
    print_finished(result.step, result.run_dir, result.val_metrics)
    return 0


if __name__ == "__main__":
    sys.exit(main())
