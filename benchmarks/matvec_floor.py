"""The memory-bandwidth floor of the decoder recurrence's products on this machine, fp32 against bf16 weights.

    python benchmarks/matvec_floor.py [--batch 1 8] [--steps 200]

A `lax.scan` of --steps dependent steps, each multiplying a [B, 1792] state by a [1792, 4096] matrix and a
[B, 2560] state by a [2560, 4096] one: the attention- and decoder-LSTM weights of NVIDIA's Tacotron 2 (71 MB
in fp32), the products every decoder step must stream. Prints one JSON line per batch size and weight dtype
with milliseconds per step and the weight bytes streamed per second. No free-running decoder step can be
faster than this (it does the same products and more), so it bounds the inference speedup any loop structure
can buy; the bf16 rows show whether XLA's CPU backend turns half the bytes into time.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from inference import run_times  # noqa: E402
from train_step import emit  # noqa: E402


def measure(batch: int, steps: int, dtype_name: str, repeats: int = 5) -> dict:
    import jax
    import jax.numpy as jnp

    dtype = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}[dtype_name]
    k1, k2 = jax.random.split(jax.random.PRNGKey(0))
    w1 = (jax.random.normal(k1, (1792, 4096)) * 0.02).astype(dtype)
    w2 = (jax.random.normal(k2, (2560, 4096)) * 0.02).astype(dtype)

    def product(x, w):
        return jnp.dot(x.astype(w.dtype), w, preferred_element_type=jnp.float32)

    @jax.jit
    def run(w1, w2, h0):
        def body(h, _):
            h1 = jnp.tanh(product(jnp.concatenate([h, h[:, :768]], -1), w1)[:, :1024])
            h2 = jnp.tanh(product(jnp.concatenate([h1, h1, h1[:, :512]], -1), w2)[:, :1024])
            return h2, None

        return jax.lax.scan(body, h0, None, length=steps)[0]

    h0 = jnp.full((batch, 1024), 0.1, jnp.float32)
    run(w1, w2, h0).block_until_ready()
    times = run_times(lambda: run(w1, w2, h0).block_until_ready(), repeats)
    per_step = min(times) / steps
    weight_bytes = w1.nbytes + w2.nbytes
    return {
        "backend": jax.default_backend(),
        "batch": batch,
        "weights": dtype_name,
        "weight_mb": round(weight_bytes / 1e6, 1),
        "ms_per_step": round(per_step * 1e3, 3),
        "weight_gb_per_s": round(weight_bytes / per_step / 1e9, 1),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    if args.steps < 1 or min(args.batch) < 1:
        parser.error("--steps and --batch must be >= 1")
    for batch in args.batch:
        for dtype_name in ("float32", "bfloat16"):
            emit([measure(batch, args.steps, dtype_name)], None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
