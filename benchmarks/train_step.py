"""Train-step time of a config's model on a synthetic batch, on whatever backend JAX runs (CPU, GPU, TPU).

    python benchmarks/train_step.py --config configs/nvidia_ljspeech.yaml --batch 8 --text-len 80 --mel-len 250
        [--steps 5] [--warmup 2] [--set KEY=VALUE ...] [--json OUT]

Item i of the batch has text length N - i*N//(4B) and mel length T - i*T//(4B) (T rounded up to a multiple of
the reduction factor), so lengths vary as in a real bucket. The step is the trainer's own jit-compiled
`train_step` (optimizer chain and controllers from the config, state donated). Prints one JSON line:
backend, device kind and count, compile seconds, median and min step seconds after warm-up, mel frames per
second (valid frames / median step), the estimated achieved TFLOP/s (`train_step_flops`: executed work on
the padded shapes, backward = 2x forward), peak memory (the device allocator's peak where the backend
reports one, else the process's peak resident set) and XLA's temporary-buffer size for the compiled step
(`xla_temp_bytes`: what rematerialisation, `--set model.decoder_remat=true`, lowers), and the minor page
faults and kernel CPU seconds per timed step with whether `run.retain_host_memory` took effect (with it, the
temporaries are faulted in during the warm-up steps only; taco_jax/train/host_memory.py).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np


def train_step_flops(m, n_mels: int, batch: int, text_len: int, mel_len: int) -> float:
    """Estimated FLOPs of one training step (forward x 3) on padded shapes [B, N] tokens, [B, T] frames.

    Counts the matrix products and convolutions (2 FLOPs per multiply-add); elementwise work is left out.
    `m` is a ModelConfig.
    """
    e, r = m.encoder_embedding_dim, m.n_frames_per_step
    h_enc = e // 2
    per_token = (
        m.encoder_n_convolutions * e * e * m.encoder_kernel_size  # encoder convs (embedding dim = e)
        + 2 * 4 * h_enc * (e + h_enc)  # BiLSTM
        + e * m.attention_dim  # memory projection
    )
    ha, hd, p, a = m.attention_rnn_dim, m.decoder_rnn_dim, m.prenet_dim, m.attention_dim
    per_decoder_step = (
        n_mels * p + p * p  # prenet
        + 4 * ha * (p + e + ha)  # attention LSTM
        + ha * a  # query
        + 4 * hd * (ha + e + hd)  # decoder LSTM
        + (hd + e) * (n_mels * r + 1)  # mel and gate projections
    )  # fmt: skip
    per_decoder_step_token = 2 * m.attention_location_n_filters * m.attention_location_kernel_size + (
        m.attention_location_n_filters * a + a + e  # location dense, energies, context
    )
    pn, k = m.postnet_embedding_dim, m.postnet_kernel_size
    per_frame = (n_mels * pn + (m.postnet_n_convolutions - 2) * pn * pn + pn * n_mels) * k
    steps = mel_len // r
    macs = batch * (
        text_len * per_token + steps * (per_decoder_step + text_len * per_decoder_step_token) + mel_len * per_frame
    )
    return 3.0 * 2.0 * macs


def synthetic_batch(batch: int, text_len: int, mel_len: int, r: int, n_symbols: int, n_mels: int, seed: int = 0):
    """The benchmark batch: item i has N - i*N//(4B) tokens and T - i*T//(4B) frames (T a multiple of r)."""
    from taco_jax.data.pipeline import random_batch

    mel_len = -(-mel_len // r) * r
    t_len = [text_len - i * text_len // (4 * batch) for i in range(batch)]
    m_len = [mel_len - i * mel_len // (4 * batch) for i in range(batch)]
    return random_batch(seed, t_len, m_len, n_symbols, n_mels)


def peak_memory() -> tuple[int, str]:
    import jax

    stats = jax.local_devices()[0].memory_stats() or {}
    if "peak_bytes_in_use" in stats:
        return int(stats["peak_bytes_in_use"]), "device_peak_bytes_in_use"
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024, "process_peak_rss"


def compiled_memory(step) -> dict[str, int]:
    """XLA's buffer assignment for the compiled step: the temporaries the step needs on top of its arguments
    and outputs (activations kept for the backward pass live here), exact and backend-independent where the
    backend reports it (CPU and GPU do); empty where it does not."""
    stats = step.memory_analysis()
    if stats is None:
        return {}
    return {
        "xla_temp_bytes": int(stats.temp_size_in_bytes),
        "xla_argument_bytes": int(stats.argument_size_in_bytes),
        "xla_output_bytes": int(stats.output_size_in_bytes),
    }


class CompiledStep(NamedTuple):
    cfg: Any  # taco_jax.config.Config
    step: Any  # the compiled train step: (state, batch) -> (state, metrics), state donated
    state: Any  # TrainState
    batch: Any  # the synthetic Batch on the device
    compile_s: float
    host_memory_retained: bool  # run.retain_host_memory took effect (taco_jax/train/host_memory.py)


def compile_step(config: str, overrides: list[str], batch: int, text_len: int, mel_len: int) -> CompiledStep:
    """The trainer's own train step for `config`, compiled ahead of time for the synthetic batch."""
    import jax

    from taco_jax.config import load_config
    from taco_jax.model import build_model
    from taco_jax.text import get_symbol_table
    from taco_jax.train.controllers import build_controllers
    from taco_jax.train.host_memory import retain_host_memory
    from taco_jax.train.objective import objective_from_config
    from taco_jax.train.state import create_train_state
    from taco_jax.train.step import jit_train_step

    cfg = load_config(config, overrides)
    # As the trainer does, before the first JAX computation.
    retained = retain_host_memory(cfg.run.retain_host_memory)
    n_symbols, n_mels, r = len(get_symbol_table(cfg.text.symbols)), cfg.audio.n_mels, cfg.model.n_frames_per_step
    model = build_model(cfg.model, n_symbols, n_mels)
    controllers = build_controllers(cfg)
    state = create_train_state(model, controllers.tx, cfg.run.seed, n_mels, controllers.init())
    step = jit_train_step(objective_from_config(cfg, model), controllers)
    data = jax.device_put(synthetic_batch(batch, text_len, mel_len, r, n_symbols, n_mels))
    t0 = time.perf_counter()
    compiled = step.lower(state, data).compile()
    return CompiledStep(cfg, compiled, state, data, time.perf_counter() - t0, retained)


class StepCost(NamedTuple):
    seconds: float  # wall time
    minor_faults: int  # pages the process faulted in (all threads)
    system_s: float  # kernel CPU seconds of the process (all threads)


def cost_of(fn: Callable[[], Any]) -> tuple[Any, StepCost]:
    """Run `fn()` (which must wait for its result); returns (its result, what it cost)."""
    before, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    result = fn()
    seconds, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    return result, StepCost(seconds, after.ru_minflt - before.ru_minflt, after.ru_stime - before.ru_stime)


def timed_step(compiled: CompiledStep, state) -> tuple[Any, Any, StepCost]:
    """One step, waited for: (new state, metrics, its cost)."""
    import jax

    (state, metrics), cost = cost_of(lambda: jax.block_until_ready(compiled.step(state, compiled.batch)))
    return state, metrics, cost


def cost_summary(costs: list[StepCost], prefix: str = "") -> dict:
    """Median and min seconds, faults and kernel seconds per step of the timed steps."""
    seconds = [c.seconds for c in costs]
    return {
        f"{prefix}median_step_s": round(statistics.median(seconds), 6),
        f"{prefix}min_step_s": round(min(seconds), 6),
        f"{prefix}minor_page_faults_per_step": sum(c.minor_faults for c in costs) // len(costs),
        f"{prefix}system_cpu_s_per_step": round(sum(c.system_s for c in costs) / len(costs), 3),
    }


def measure(args) -> dict:
    import jax

    from taco_jax.train.state import count_params

    compiled = compile_step(args.config, args.set, args.batch, args.text_len, args.mel_len)
    cfg, state, batch, compile_s = compiled.cfg, compiled.state, compiled.batch, compiled.compile_s
    n_mels = cfg.audio.n_mels
    costs = []
    for i in range(args.warmup + args.steps):
        state, metrics, cost = timed_step(compiled, state)
        if i >= args.warmup:
            costs.append(cost)
    if not np.isfinite(float(metrics.means["train/loss"])):
        raise RuntimeError("the benchmark step produced a non-finite loss")
    median = statistics.median(c.seconds for c in costs)
    flops = train_step_flops(cfg.model, n_mels, args.batch, args.text_len, int(batch.mel.shape[1]))
    memory, memory_source = peak_memory()
    device = jax.local_devices()[0]
    return {
        "config": args.config,
        "overrides": args.set,
        "backend": jax.default_backend(),
        "device_kind": device.device_kind,
        "local_devices": jax.local_device_count(),
        "devices_used": 1,
        "parameters": count_params(state.params),
        "batch": args.batch,
        "text_len": args.text_len,
        "mel_len": int(batch.mel.shape[1]),
        "compile_s": round(compile_s, 3),
        **cost_summary(costs),
        "steps_timed": len(costs),
        "mel_frames_per_s": round(float(np.sum(batch.mel_len)) / median, 1),
        "est_train_tflop": round(flops / 1e12, 4),
        "est_achieved_tflops": round(flops / median / 1e12, 4),
        "host_memory_retained": compiled.host_memory_retained,
        "peak_memory_bytes": memory,
        "peak_memory_source": memory_source,
        **compiled_memory(compiled.step),
    }


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every train-step benchmark shares (config, synthetic batch, timing, output)."""
    parser.add_argument("--config", default="configs/nvidia_ljspeech.yaml")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--text-len", type=int, default=80)
    parser.add_argument("--mel-len", type=int, default=250)
    parser.add_argument("--steps", type=int, default=5, help="timed steps after warm-up")
    # Two: the first step maps the temporaries; the second may map a second block while XLA is still
    # releasing the first (host_memory.py); later steps reuse them.
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", help="also append the JSON line to this file")


def check_batch_arguments(parser: argparse.ArgumentParser, args) -> None:
    if args.batch < 1 or args.text_len < 1 or args.mel_len < 1 or args.steps < 1 or args.warmup < 0:
        parser.error("--batch, --text-len, --mel-len and --steps must be >= 1, --warmup >= 0")


def emit(records: list[dict], json_path: str | None) -> None:
    """Print one JSON line per record; also append them to `json_path` when given."""
    lines = "".join(json.dumps(rec) + "\n" for rec in records)
    print(lines, end="")
    if json_path:
        with open(json_path, "a") as f:
            f.write(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_batch_arguments(parser)
    args = parser.parse_args(argv)
    check_batch_arguments(parser, args)
    emit([measure(args)], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
