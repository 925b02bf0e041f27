"""Input-pipeline throughput: how fast the training loader produces batches, to set against the step rate.

    python benchmarks/loader.py --config configs/demo.yaml [--batches 500] [--set KEY=VALUE ...] [--json OUT]

Builds the data exactly as training does (`build_data`: corpus, validation, mel cache, buckets) and times
it, then draws --batches training batches from the loader (shuffled, bucketed, padded numpy batches, the
host-side work of every step) and prints one JSON line: seconds to build the data, batches and valid mel
frames per second from the loader, and the same per-batch cost as a fraction of a train step when
--step-s (a measured step time, e.g. from train_step.py) is given.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import emit  # noqa: E402


def measure(args) -> dict:
    from taco_jax.config import load_config
    from taco_jax.data.pipeline import build_data

    cfg = load_config(args.config, args.set)
    t0 = time.perf_counter()
    data = build_data(cfg, progress=False)
    build_s = time.perf_counter() - t0
    times, frames = [], 0
    for _ in range(args.batches):
        t0 = time.perf_counter()
        batch = next(data.train_loader)
        times.append(time.perf_counter() - t0)
        frames += int(np.sum(batch.mel_len))
    total = sum(times)
    rec = {
        "config": args.config,
        "overrides": args.set,
        "train_items": len(data.train_items),
        "build_data_s": round(build_s, 3),
        "batches": args.batches,
        "batch_size": cfg.data.batch_size,
        "median_batch_ms": round(1e3 * statistics.median(times), 4),
        "batches_per_s": round(args.batches / total, 1),
        "mel_frames_per_s": round(frames / total, 1),
    }
    if args.step_s:
        rec["step_s"] = args.step_s
        rec["loader_share_of_step"] = round(total / args.batches / args.step_s, 6)
    return rec


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--step-s", type=float, default=0.0, help="a measured train-step time to compare with")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", help="also append the JSON line to this file")
    args = parser.parse_args(argv)
    if args.batches < 1 or args.step_s < 0:
        parser.error("--batches must be >= 1 and --step-s >= 0")
    emit([measure(args)], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
