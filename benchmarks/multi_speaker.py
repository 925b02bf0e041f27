"""Does a multi-speaker model trained on a two-voice eSpeak corpus align and speak in both voices?

    python benchmarks/multi_speaker.py --out runs/multi_speaker [--max-steps 800] [--voices en-us en-us+f3]

Trains `configs/demo.yaml` on a demo corpus whose sentences alternate between the voices (filelist speaker
column = voice index, `model.n_speakers` = number of voices), then synthesizes demo_quality's ten unseen
sentences as each speaker. Reported per speaker: the final validation alignment, and, against eSpeak's
rendering of the same sentences in every voice, the DTW log-mel error (demo_quality's measure) and the median
F0 of the Griffin-Lim audio (librosa's YIN, 60-400 Hz). Pass: val diag >= 0.8 and focus >= 0.6, and for every
speaker its own voice is the nearest by mean DTW error and by median F0.
An existing finished run in <out>/run is reused (only the measurement is repeated).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from demo_quality import SENTENCES, dtw_mse  # noqa: E402


def median_f0(wav: np.ndarray, sr: int) -> float:
    import librosa

    f0 = librosa.yin(wav.astype(np.float32), fmin=60, fmax=400, sr=sr)
    return float(np.median(f0))


def espeak_renderings(cfg, voice: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(wav, log-mel) of each sentence in `voice`, at the model's sampling rate."""
    from taco_jax.audio import mel_spectrogram
    from taco_jax.demo import synthesize_espeak
    from taco_jax.text import clean_text

    out = []
    for text in SENTENCES:
        wav, sr = synthesize_espeak(clean_text(text, cfg.text.cleaners), voice, cfg.data.demo.words_per_minute)
        if sr != cfg.audio.sampling_rate:
            import soxr

            wav = soxr.resample(wav, sr, cfg.audio.sampling_rate)
        out.append((wav, mel_spectrogram(wav, cfg.audio)))
    return out


def measure(run_dir: str) -> dict:
    from taco_jax.synthesize import load_synthesizer

    final = json.loads((Path(run_dir) / "final_metrics.json").read_text())
    probe = load_synthesizer(run_dir, speaker=0)
    cfg = probe.cfg
    voices = list(cfg.data.demo.voices)
    sr = cfg.audio.sampling_rate
    refs = {v: espeak_renderings(cfg, v) for v in voices}
    ref_f0 = {v: float(np.median([median_f0(w, sr) for w, _ in refs[v]])) for v in voices}
    speakers = []
    for k, own in enumerate(voices):
        synth = load_synthesizer(run_dir, speaker=k)
        results = synth(SENTENCES, batch_size=len(SENTENCES))
        dtw = {v: float(np.mean([dtw_mse(r.mel, m) for r, (_, m) in zip(results, refs[v], strict=True)])) for v in refs}
        f0 = float(np.median([median_f0(synth.vocode(r.mel), sr) for r in results]))
        nearest_dtw = min(dtw, key=dtw.get)
        nearest_f0 = min(ref_f0, key=lambda v: abs(ref_f0[v] - f0))
        speakers.append(
            {
                "speaker": k, "voice": own, "stopped": sum(r.stopped for r in results), "dtw_mse": dtw,
                "median_f0_hz": f0, "nearest_by_dtw": nearest_dtw, "nearest_by_f0": nearest_f0,
                "own_voice_nearest": nearest_dtw == own and nearest_f0 == own,
            }
        )  # fmt: skip
    diag, focus = final.get("val/align_diag", 0.0), final.get("val/align_focus", 0.0)
    return {
        "run_dir": run_dir,
        "step": final.get("step"),
        "val_align_diag": diag,
        "val_align_focus": focus,
        "espeak_median_f0_hz": ref_f0,
        "speakers": speakers,
        "passed": diag >= 0.8 and focus >= 0.6 and all(s["own_voice_nearest"] for s in speakers),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--voices", nargs="+", default=["en-us", "en-us+f3"])
    parser.add_argument("--max-steps", type=int, default=800)
    parser.add_argument("--out", default="runs/multi_speaker")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra training override")
    args = parser.parse_args(argv)
    out = Path(args.out)
    run_dir = out / "run"
    if not (run_dir / "final_metrics.json").exists():
        overrides = [
            f"data.demo.voices=[{','.join(args.voices)}]", f"model.n_speakers={len(args.voices)}",
            f"run.max_steps={args.max_steps}", f"run.out_dir={out}", "run.name=run", *args.set,
        ]  # fmt: skip
        cmd = [sys.executable, "-m", "taco_jax.train", "--config", args.config, "--no-progress"]
        for o in overrides:
            cmd += ["--set", o]
        subprocess.run(cmd, check=True)
    summary = measure(str(run_dir))
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
