"""Free-running quality of a demo run against eSpeak NG's own rendering of unseen sentences.

    python benchmarks/demo_quality.py --checkpoint runs/demo [--json OUT.json]

For each of ten sentences a user might type (none is in the generated corpus) the model synthesizes a
mel freely; eSpeak renders the same (cleaned) text and its mel is the reference. Reported per sentence:
whether the gate stopped it, the length ratio to eSpeak's, and the mean squared log-mel error along a DTW
path (librosa's DTW on Euclidean frame distances). The baseline is the same DTW error between two
*different* eSpeak sentences (consecutive pairs of the ten). Pass: all ten stop, all lengths within
+-15%, and mean model error <= half the mean baseline error.
"""

from __future__ import annotations

import argparse
import json
import sys

import librosa
import numpy as np

SENTENCES = [
    "Can you tell me the way to the nearest train station?",
    "I would like a cup of coffee with milk, please.",
    "The meeting has been moved to Thursday afternoon.",
    "My brother bought a new bicycle last week.",
    "It is raining outside, so take an umbrella.",
    "We will leave for the airport at six in the morning.",
    "She read three books during the summer holidays.",
    "Please turn off the lights when you leave the room.",
    "The children are playing football in the park.",
    "How much does this blue jacket cost?",
]


def dtw_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared log-mel error along the optimal DTW path between a [Ta, C] and b [Tb, C]."""
    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    return float(np.mean((a[path[:, 0]] - b[path[:, 1]]) ** 2))


def evaluate(checkpoint: str, tolerance: float = 0.15) -> dict:
    from taco_jax.audio import mel_spectrogram
    from taco_jax.demo import synthesize_espeak
    from taco_jax.synthesize import load_synthesizer
    from taco_jax.text import clean_text

    synth = load_synthesizer(checkpoint)
    cfg = synth.cfg
    voice = cfg.data.demo.voice
    wpm = cfg.data.demo.words_per_minute
    refs = []
    for text in SENTENCES:
        wav, sr = synthesize_espeak(clean_text(text, cfg.text.cleaners), voice, wpm)
        if sr != cfg.audio.sampling_rate:
            import soxr

            wav = soxr.resample(wav, sr, cfg.audio.sampling_rate)
        refs.append(mel_spectrogram(wav, cfg.audio))
    results = synth(SENTENCES, batch_size=len(SENTENCES))
    rows = []
    for text, res, ref in zip(SENTENCES, results, refs, strict=True):
        ratio = res.frames / len(ref)
        rows.append(
            {
                "text": text,
                "stopped": res.stopped,
                "frames": res.frames,
                "espeak_frames": len(ref),
                "length_ratio": ratio,
                "length_ok": abs(ratio - 1.0) <= tolerance,
                "dtw_mse": dtw_mse(res.mel, ref),
            }
        )
    baseline = [dtw_mse(refs[i], refs[(i + 1) % len(refs)]) for i in range(len(refs))]
    model_err = float(np.mean([r["dtw_mse"] for r in rows]))
    base_err = float(np.mean(baseline))
    summary = {
        "checkpoint": checkpoint,
        "stopped": sum(r["stopped"] for r in rows),
        "length_within_tolerance": sum(r["length_ok"] for r in rows),
        "tolerance": tolerance,
        "mean_dtw_mse_model_vs_espeak": model_err,
        "mean_dtw_mse_espeak_vs_other_sentence": base_err,
        "error_ratio": model_err / base_err,
    }
    all_stop = summary["stopped"] == len(rows)
    all_lengths = summary["length_within_tolerance"] == len(rows)
    summary["pass"] = bool(all_stop and all_lengths and model_err <= 0.5 * base_err)
    return {"summary": summary, "sentences": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default="runs/demo", help="run directory or checkpoint")
    parser.add_argument("--json", help="also write the full result here")
    args = parser.parse_args(argv)
    out = evaluate(args.checkpoint)
    for r in out["sentences"]:
        print(
            f"{'stop' if r['stopped'] else 'NO STOP':7s} len {r['frames']:4d}/{r['espeak_frames']:4d} "
            f"({r['length_ratio']:.2f}) dtw_mse {r['dtw_mse']:.3f}  {r['text']}"
        )
    s = out["summary"]
    print(
        f"stopped {s['stopped']}/10, lengths within +-{s['tolerance']:.0%}: {s['length_within_tolerance']}/10, "
        f"DTW MSE model {s['mean_dtw_mse_model_vs_espeak']:.3f} vs other-sentence baseline "
        f"{s['mean_dtw_mse_espeak_vs_other_sentence']:.3f} (ratio {s['error_ratio']:.2f}) -> "
        f"{'PASS' if s['pass'] else 'FAIL'}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
    return 0 if s["pass"] else 1


if __name__ == "__main__":
    sys.exit(main())
