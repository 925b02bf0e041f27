"""A `python -m taco_jax.train` process that kills itself (SIGKILL) at a chosen point: the fault-injection suite's
child. Not a test module; run as `python tests/fault_child.py POINT NTH DELAY_S -- <train arguments>`.

POINT is where the kill is armed: `start` (DELAY_S after the process starts: imports, data, restore), `step` (the
NTH training step's batch), `log` (the NTH metrics write), `eval` (the NTH validation), `samples` (the NTH sample
synthesis and writing) or `checkpoint` (the NTH checkpoint save, which Orbax finishes in background threads);
`none` never kills. The kill lands DELAY_S seconds after the NTH call begins: inside it or in what follows.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time


def _kill_after(delay_s: float) -> None:
    def kill() -> None:
        time.sleep(delay_s)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=kill, daemon=True).start()


def _arm(point: str, nth: int, delay_s: float) -> None:
    from taco_jax.checkpoint import Checkpointer
    from taco_jax.monitor import Monitor
    from taco_jax.train import loop
    from taco_jax.train.evaluation import Evaluator, SampleWriter

    owner, name = {
        "step": (loop, "shard_batch"), "log": (Monitor, "scalars"), "eval": (Evaluator, "__call__"),
        "samples": (SampleWriter, "__call__"), "checkpoint": (Checkpointer, "save"),
    }[point]  # fmt: skip
    original = getattr(owner, name)
    calls = 0

    def wrapper(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == nth:
            _kill_after(delay_s)
        return original(*args, **kwargs)

    setattr(owner, name, wrapper)


def main() -> int:
    point, nth, delay_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    train_args = sys.argv[sys.argv.index("--") + 1 :]
    import jax

    jax.config.update("jax_compilation_cache_dir", os.environ["FAULT_JAX_CACHE"])
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    if point == "start":
        _kill_after(delay_s)
    elif point != "none":
        _arm(point, nth, delay_s)
    from taco_jax.train.__main__ import main as train_main

    return train_main(train_args)


if __name__ == "__main__":
    sys.exit(main())
