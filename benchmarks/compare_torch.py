"""taco_jax's train step against NVIDIA's PyTorch training step, on the same batch and weights, in one run.

    python benchmarks/compare_torch.py --config configs/nvidia_ljspeech.yaml --batch 8 --text-len 80 --mel-len 250
        [--steps 5] [--warmup 2] [--threads N] [--set KEY=VALUE ...] [--json OUT]

The batch is `train_step.py`'s synthetic one. The PyTorch side is the reference model of the converter's
parity tests (tests/torch_reference.py: NVIDIA/tacotron2's architecture and key names), loaded with
taco_jax's initial weights through the converter's export (so both start from the same parameters), in
train mode, with NVIDIA's training step: MSE(mel) + MSE(mel_post) + BCE-with-logits(gate) on the padded,
output-masked tensors, backward, `clip_grad_norm_(1.0)`, Adam(lr 1e-3, coupled L2 weight_decay 1e-6).
taco_jax's side is the trainer's own compiled step with the config's settings, unchanged. The two steps
alternate (JAX, torch, JAX, torch, ...) so that both see the same machine state; torch uses --threads
intra-op threads (default: every core). Prints one JSON line with both sides' median and min step seconds,
minor page faults and kernel CPU seconds per step (the process's, so each side's figure also holds what the
other's idle threads did meanwhile), and `speedup` = torch median / taco_jax median.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the PyTorch reference model lives there
from train_step import (  # noqa: E402
    add_batch_arguments,
    check_batch_arguments,
    compile_step,
    cost_of,
    cost_summary,
    emit,
    timed_step,
)  # fmt: skip


def torch_model_like(model_cfg, params, batch_stats, n_symbols: int, n_mels: int):
    """The PyTorch reference Tacotron 2 with `model_cfg`'s dims holding taco_jax's weights (strict load)."""
    import torch
    from torch_reference import Tacotron2, TorchTacotron2Config

    from taco_jax.convert import flax_to_torch

    # The NVIDIA architecture's dims only (the Tacotron2-New options share some names but not their types).
    t2n_options = ("mmi", "gst", "tpse", "ddc")
    fields = {f.name for f in dataclasses.fields(TorchTacotron2Config) if not f.name.startswith(t2n_options)}
    dims = {k: v for k, v in dataclasses.asdict(model_cfg).items() if k in fields and k != "n_symbols"}
    model = Tacotron2(TorchTacotron2Config(n_symbols=n_symbols, n_mels=n_mels, **dims))
    state_dict = flax_to_torch(params, batch_stats, "nvidia")
    model.load_state_dict({k: torch.from_numpy(np.asarray(v)) for k, v in state_dict.items()}, strict=True)
    return model


def torch_batch(batch, r: int):
    """NVIDIA's tensors from a taco_jax Batch: text, lengths (int64), mel [B, n_mels, T], gate [B, T / r]."""
    import torch

    return (
        torch.from_numpy(np.asarray(batch.text, np.int64)),
        torch.from_numpy(np.asarray(batch.text_len, np.int64)),
        torch.from_numpy(np.asarray(batch.mel).transpose(0, 2, 1).copy()),
        torch.from_numpy(np.asarray(batch.mel_len, np.int64)),
        torch.from_numpy(np.asarray(batch.gate)[:, r - 1 :: r].copy()),  # a step's target: its last frame's
    )


def nvidia_train_step(model, optimizer, tensors) -> float:
    """One NVIDIA training step; returns the loss."""
    import torch
    import torch.nn.functional as F

    text, text_len, mel, mel_len, gate = tensors
    optimizer.zero_grad(set_to_none=True)
    mel_out, mel_post, gate_out, _ = model(text, text_len, mel, mel_len)
    loss = F.mse_loss(mel_out, mel) + F.mse_loss(mel_post, mel) + F.binary_cross_entropy_with_logits(gate_out, gate)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    return float(loss.detach())


def compare(args) -> dict:
    import jax
    import torch

    torch.set_num_threads(args.threads)
    compiled = compile_step(args.config, args.set, args.batch, args.text_len, args.mel_len)
    cfg, state = compiled.cfg, compiled.state
    host = jax.device_get(compiled.batch)
    params, batch_stats = jax.device_get((state.params, state.batch_stats))
    n_symbols = int(params["embedding"]["embedding"].shape[0])
    model = torch_model_like(cfg.model, params, batch_stats, n_symbols, cfg.audio.n_mels)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-6)
    tensors = torch_batch(host, cfg.model.n_frames_per_step)

    jax_costs, torch_costs = [], []
    for i in range(args.warmup + args.steps):
        state, metrics, jax_cost = timed_step(compiled, state)
        torch_loss, torch_cost = cost_of(lambda: nvidia_train_step(model, optimizer, tensors))
        if i >= args.warmup:
            jax_costs.append(jax_cost)
            torch_costs.append(torch_cost)
    jax_loss = float(metrics.means["train/loss"])
    if not (np.isfinite(jax_loss) and np.isfinite(torch_loss)):
        raise RuntimeError(f"non-finite loss (taco_jax {jax_loss}, torch {torch_loss})")
    jax_median = statistics.median(c.seconds for c in jax_costs)
    torch_median = statistics.median(c.seconds for c in torch_costs)
    frames = float(np.sum(host.mel_len))
    return {
        "config": args.config,
        "overrides": args.set,
        "batch": args.batch,
        "text_len": args.text_len,
        "mel_len": int(host.mel.shape[1]),
        "jax_backend": jax.default_backend(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "steps_timed": len(jax_costs),
        "taco_jax_compile_s": round(compiled.compile_s, 3),
        "host_memory_retained": compiled.host_memory_retained,
        **cost_summary(jax_costs, "taco_jax_"),
        **cost_summary(torch_costs, "torch_"),
        "taco_jax_mel_frames_per_s": round(frames / jax_median, 1),
        "torch_mel_frames_per_s": round(frames / torch_median, 1),
        "speedup": round(torch_median / jax_median, 3),
        "last_loss": {"taco_jax": round(jax_loss, 5), "torch": round(torch_loss, 5)},
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_batch_arguments(parser)
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    args = parser.parse_args(argv)
    check_batch_arguments(parser, args)
    if args.threads < 1:
        parser.error("--threads must be >= 1")
    emit([compare(args)], args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
