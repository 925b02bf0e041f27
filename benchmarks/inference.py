"""Free-running synthesis time and real-time factor, for B = 1 and batched, optionally against PyTorch.

    python benchmarks/inference.py --config configs/nvidia_ljspeech.yaml [--frames 200] [--text-len 60]
        [--batch-sizes 1 8] [--repeats 5] [--compare-torch] [--threads N] [--set KEY=VALUE ...] [--json OUT]

Times the model's own jit-compiled `infer` (encoder, `lax.while_loop` decoder, postnet; the config's prenet
dropout at inference) on random tokens, with the stop gate disabled (threshold 2) so every run decodes
exactly --frames frames (rounded up to a multiple of r): synthesis time then depends on the length alone,
not on what random weights happen to predict. Weights are the config's initialisation (synthesis time does
not depend on their values). Real-time factor = synthesis seconds / seconds of audio the frames stand for
(frames x hop / sample rate); below 1 is faster than real time. Vocoding is not included.

With --compare-torch the same weights (converter export) run through the PyTorch reference model's
inference loop (NVIDIA's: one decoder step per Python iteration, eval mode, `torch.no_grad`), alternating
with taco_jax's runs; `speedup` = torch median / taco_jax median. Prints one JSON line per batch size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_step import emit  # noqa: E402


def run_times(fn, repeats: int) -> list[float]:
    """Wall seconds of `repeats` calls of `fn` (which must wait for its own result)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def measure(args) -> list[dict]:
    import jax
    import jax.numpy as jnp

    from taco_jax.config import load_config
    from taco_jax.model import build_model
    from taco_jax.text import get_symbol_table
    from taco_jax.train.state import init_variables

    cfg = load_config(args.config, [*args.set, "model.gate_threshold=2.0", f"model.max_decoder_steps={args.frames}"])
    n_symbols, n_mels, r = len(get_symbol_table(cfg.text.symbols)), cfg.audio.n_mels, cfg.model.n_frames_per_step
    model = build_model(cfg.model, n_symbols, n_mels)
    variables = init_variables(model, jax.random.PRNGKey(cfg.run.seed), n_mels, r)
    infer = jax.jit(
        lambda v, text, text_len, rng: model.apply(v, text, text_len, method=model.infer, rngs={"dropout": rng})
    )
    frames = -(-args.frames // r) * r
    audio_s = frames * cfg.audio.hop_length / cfg.audio.sampling_rate

    torch_model = None
    if args.compare_torch:
        import torch
        from compare_torch import torch_model_like

        torch.set_num_threads(args.threads)
        params, batch_stats = jax.device_get((variables["params"], variables["batch_stats"]))
        torch_model = torch_model_like(cfg.model, params, batch_stats, n_symbols, n_mels)
        torch_model.eval()
        torch_model.set_prenet_dropout("always" if cfg.model.prenet_dropout_at_inference else "off")

    records = []
    rng = np.random.default_rng(0)
    for b in args.batch_sizes:
        text = rng.integers(1, n_symbols, (b, args.text_len)).astype(np.int32)
        text_len = np.full(b, args.text_len, np.int32)
        inputs = (variables, jnp.asarray(text), jnp.asarray(text_len), jax.random.PRNGKey(1))
        t0 = time.perf_counter()
        compiled = infer.lower(*inputs).compile()
        compile_s = time.perf_counter() - t0
        out = jax.block_until_ready(compiled(*inputs))
        if int(np.min(out.lengths)) != frames:
            raise RuntimeError(f"decoded {np.asarray(out.lengths)} frames, expected {frames} for every item")

        def run_jax(compiled=compiled, inputs=inputs):
            jax.block_until_ready(compiled(*inputs))

        jax_times, torch_times = [], []
        if torch_model is None:
            jax_times = run_times(run_jax, args.repeats)
        else:
            text_t = torch.from_numpy(text.astype(np.int64))

            def run_torch(text_t=text_t):
                mel, *_ = torch_model.inference(text_t, n_steps=frames // r, early_stop=False)
                if mel.shape[-1] != frames:
                    raise RuntimeError(f"torch decoded {mel.shape[-1]} frames, expected {frames}")

            run_torch()  # warm-up
            for _ in range(args.repeats):  # alternate, so that both see the same machine state
                jax_times += run_times(run_jax, 1)
                torch_times += run_times(run_torch, 1)
        jax_median = statistics.median(jax_times)
        rec = {
            "config": args.config,
            "overrides": args.set,
            "backend": jax.default_backend(),
            "batch": b,
            "text_len": args.text_len,
            "frames": frames,
            "audio_s_per_item": round(audio_s, 6),
            "compile_s": round(compile_s, 3),
            "median_s": round(jax_median, 6),
            "min_s": round(min(jax_times), 6),
            "rtf": round(jax_median / (b * audio_s), 6),
            "frames_per_s": round(b * frames / jax_median, 1),
        }
        if torch_times:
            torch_median = statistics.median(torch_times)
            rec.update(
                torch_threads=torch.get_num_threads(),
                torch_median_s=round(torch_median, 6),
                torch_rtf=round(torch_median / (b * audio_s), 6),
                speedup=round(torch_median / jax_median, 3),
            )
        records.append(rec)
    return records


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/nvidia_ljspeech.yaml")
    parser.add_argument("--frames", type=int, default=200, help="frames decoded per item")
    parser.add_argument("--text-len", type=int, default=60, help="tokens per item")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per batch size (after compile)")
    parser.add_argument("--compare-torch", action="store_true", help="also time the PyTorch reference loop")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch intra-op threads")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--json", help="also append the JSON lines to this file")
    args = parser.parse_args(argv)
    if min(args.batch_sizes) < 1 or args.frames < 1 or args.text_len < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--batch-sizes, --frames, --text-len, --repeats and --threads must be >= 1")
    emit(measure(args), args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
