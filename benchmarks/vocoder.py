"""HiFi-GAN inference in taco_jax against the PyTorch generator on the same weights, in one run; and a train step.

    python benchmarks/vocoder.py inference [--preset v1] [--frames 192] [--batch 1 8] [--repeats 7]
        [--threads N] [--json OUT]
    python benchmarks/vocoder.py train-step [--config configs/vocoder_demo.yaml] [--set KEY=VALUE] [--steps 5]
        [--json OUT]

inference: a generator of the preset with random weights as the published training code draws them is saved as
a published `g_` file (weight norm, `{'generator': state_dict}`) and loaded by both sides: PyTorch's reference
generator (tests/hifigan_torch_reference.py) with its weight norm removed, in eval mode under inference_mode,
with --threads intra-op threads (default: every core); taco_jax's through `load_vocoder` (plain weights) and
the synthesizer's own `HifiganVocoder`, compiled ahead of time. The input is an eSpeak sentence's log-mel
repeated to --frames frames (a multiple of 64, the vocoder's padding bucket, so neither side does extra work).
The two sides alternate (JAX, torch, JAX, ...) after a warm-up call each. One JSON line per batch size with both
sides' median and min seconds per call, the real-time factor (median seconds per second of audio) of each, and
`speedup` = torch median / taco_jax median.

train-step: the vocoder trainer's own jitted step (configs/vocoder_demo.yaml by default) on a random batch of its
segment shape: compile seconds, the median and min of --steps timed steps after one warm-up step, and seconds
of training audio per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the PyTorch reference generator lives there


def espeak_mel(frames: int) -> np.ndarray:
    """A real log-mel [frames, 80]: an eSpeak sentence at NVIDIA's features, repeated to `frames`."""
    from taco_jax.audio import mel_spectrogram
    from taco_jax.config import AudioConfig
    from taco_jax.demo.espeak import synthesize_espeak

    wav, _ = synthesize_espeak("The quick brown fox jumps over the lazy dog, and the vocoder renders it.")
    mel = mel_spectrogram(wav, AudioConfig())
    return np.resize(mel, (frames, mel.shape[1])).astype(np.float32)


def published_generator(preset: str, out_dir: Path):
    """(torch generator with weight norm removed, path of its published g_ file, config) for `preset`."""
    import torch
    from hifigan_torch_reference import Generator as TorchGenerator

    from taco_jax.convert.hifigan import write_hifigan_generator
    from taco_jax.vocoder import PRESETS

    config = PRESETS[preset]
    torch.manual_seed(0)
    model = TorchGenerator(config.to_json())
    path = write_hifigan_generator(out_dir / "g_00000000", {k: v.numpy() for k, v in model.state_dict().items()})
    (out_dir / "config.json").write_text(json.dumps(config.to_json()))
    model.remove_weight_norm()
    return model.eval(), path, config


def _median_min(xs: list[float]) -> dict:
    return {"median_s": statistics.median(xs), "min_s": min(xs)}


def inference(args) -> list[dict]:
    import torch

    from taco_jax.vocoder import load_vocoder
    from taco_jax.vocoder.inference import HifiganVocoder

    if args.threads:
        torch.set_num_threads(args.threads)
    records = []
    with tempfile.TemporaryDirectory() as tmp:
        torch_model, path, _ = published_generator(args.preset, Path(tmp))
        config, params = load_vocoder(path)
    mel = espeak_mel(args.frames)
    audio_s = args.frames * config.hop_length / config.sampling_rate
    for b in args.batch:
        vocoder = HifiganVocoder(config, params, batch_size=b)
        mels = [mel] * b
        x = torch.from_numpy(np.stack(mels).transpose(0, 2, 1).copy())
        jax_times, torch_times = [], []
        with torch.inference_mode():
            vocoder(mels), torch_model(x)  # warm-up (and compilation, outside the timing)
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                vocoder(mels)
                jax_times.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                torch_model(x)
                torch_times.append(time.perf_counter() - t0)
        jax_stats, torch_stats = _median_min(jax_times), _median_min(torch_times)
        records.append({
            "benchmark": "vocoder_inference", "preset": args.preset, "batch": b, "frames": args.frames,
            "audio_s_per_item": audio_s, "taco_jax": jax_stats, "torch": torch_stats,
            "taco_jax_rtf": jax_stats["median_s"] / (b * audio_s), "torch_rtf": torch_stats["median_s"] / (b * audio_s),
            "speedup": torch_stats["median_s"] / jax_stats["median_s"], "compile_s": vocoder.timing.compile_s,
            "torch_threads": torch.get_num_threads(), "torch_version": torch.__version__,
        })  # fmt: skip
    return records


def train_step(args) -> list[dict]:
    """The trainer's own compiled step (configured as --config says) on a random batch of its segment shape."""
    import jax

    from taco_jax.train_vocoder.config import load_vocoder_train_config
    from taco_jax.train_vocoder.data import SegmentBatch
    from taco_jax.train_vocoder.init import initial_state
    from taco_jax.train_vocoder.models import build_models, resolve_hifigan_config
    from taco_jax.train_vocoder.state import make_optimizer
    from taco_jax.train_vocoder.step import LossWeights, jit_train_step

    cfg = load_vocoder_train_config(args.config, args.set)
    hifigan = resolve_hifigan_config(cfg)
    models = build_models(hifigan, cfg.generator.weight_norm, cfg.discriminator.width_divisor)
    tx = make_optimizer(cfg.optim, 1000)
    state = initial_state(cfg, models, tx, None, fine_tune=False)
    b, seg = cfg.data.batch_size, cfg.data.segment_size
    rng = np.random.default_rng(0)
    batch = SegmentBatch(
        rng.normal(-6.0, 2.0, (b, seg // hifigan.hop_length, hifigan.num_mels)).astype(np.float32),
        np.clip(rng.normal(0.0, 0.1, (b, seg)), -1, 1).astype(np.float32),
    )
    t0 = time.perf_counter()
    step = jit_train_step(models, tx, LossWeights.from_config(cfg.loss)).lower(state, batch).compile()
    compile_s = time.perf_counter() - t0
    state, _ = step(state, batch)  # warm-up
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        state, _ = step(state, batch)
        jax.block_until_ready(state.step)
        times.append(time.perf_counter() - t0)
    gen_params = sum(int(np.size(x)) for x in jax.tree.leaves(state.gen_params))
    disc_params = sum(int(np.size(x)) for x in jax.tree.leaves(state.disc_params))
    return [{"benchmark": "vocoder_train_step", "config": args.config, "overrides": args.set, "batch": b,
             "segment_size": seg, "generator_params": gen_params, "discriminator_params": disc_params,
             "compile_s": compile_s, **_median_min(times),
             "audio_s_per_s": b * seg / hifigan.sampling_rate / statistics.median(times)}]  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    inf = sub.add_parser("inference")
    inf.add_argument("--preset", default="v1", choices=("v1", "v2", "v3"))
    inf.add_argument("--frames", type=int, default=192)
    inf.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    inf.add_argument("--repeats", type=int, default=7)
    inf.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's, every core)")
    tr = sub.add_parser("train-step")
    tr.add_argument("--config", default=str(ROOT / "configs" / "vocoder_demo.yaml"))
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    tr.add_argument("--steps", type=int, default=5)
    for p in (inf, tr):
        p.add_argument("--json", help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    if args.what == "inference" and (args.frames < 1 or args.frames % 64):
        parser.error("--frames must be a positive multiple of 64 (the vocoder's padding bucket)")
    records = inference(args) if args.what == "inference" else train_step(args)
    lines = "".join(json.dumps(r) + "\n" for r in records)
    print(lines, end="")
    if args.json:
        with open(args.json, "a") as f:
            f.write(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
