"""Teacher-forced mels of a Tacotron 2 checkpoint, aligned to the audio: the inputs of vocoder fine-tuning.

    python -m taco_jax.synthesize.teacher_forced --checkpoint RUN --filelist train.txt [--filelist val.txt]
        --out-dir D [--batch-size 8] [--set KEY=VALUE]

For each utterance of each filelist (`path|text[|speaker]`), the model reads the text and the recording's own
mel (teacher forcing, inference mode: no dropout but what the config keeps at inference) and its post-net mel
is saved as `D/mels/<name>.npy`, float32 [frames, n_mels] with frames = 1 + samples // hop: frame t belongs to
samples [t*hop, (t+1)*hop) exactly like the ground-truth mel it replaces, so a vocoder trained on pairs
(audio, teacher-forced mel) learns to render what the Tacotron really predicts. `D/<filelist name>` lists
`wav_path|mels/<name>.npy` (mel paths relative to D, wav paths absolute), which
`python -m taco_jax.train_vocoder` reads. Files are written atomically; a rerun rewrites them.
The mean absolute difference between teacher-forced and ground-truth log-mels is printed per filelist.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from taco_jax.audio import load_wav, mel_spectrogram
from taco_jax.data.filelist import DataError, Utterance, read_filelist
from taco_jax.errors import report_error
from taco_jax.files import atomic_output, write_text_atomic
from taco_jax.logging_setup import setup_logging
from taco_jax.text import text_to_sequence

__all__ = ["main", "write_teacher_forced"]

TEXT_MULTIPLE, FRAME_MULTIPLE = 32, 64  # padded widths: few compiled programs


def _mel_names(utterances: Sequence[Utterance], taken: set[str]) -> list[str]:
    """A file name per utterance: the wav's stem, made unique with a counter where stems repeat."""
    names = []
    for u in utterances:
        stem, k = Path(u.wav_path).stem, 1
        name = f"{stem}.npy"
        while name in taken:
            k += 1
            name = f"{stem}_{k}.npy"
        taken.add(name)
        names.append(name)
    return names


def _forward(model, variables, items: list[tuple[np.ndarray, np.ndarray, int]], r: int, rng) -> list[np.ndarray]:
    """Post-net mels [frames_i, n_mels] of a batch of (token ids, ground-truth mel, speaker)."""
    n = -(-max(len(ids) for ids, _, _ in items) // TEXT_MULTIPLE) * TEXT_MULTIPLE
    multiple = np.lcm(r, FRAME_MULTIPLE)
    t = -(-max(len(mel) for _, mel, _ in items) // multiple) * multiple
    text = np.zeros((len(items), n), np.int32)
    mel = np.zeros((len(items), t, items[0][1].shape[1]), np.float32)
    for i, (ids, m, _) in enumerate(items):
        text[i, : len(ids)], mel[i, : len(m)] = ids, m
    text_len = np.array([len(ids) for ids, _, _ in items], np.int32)
    mel_len = np.array([len(m) for _, m, _ in items], np.int32)
    speaker = np.array([s for _, _, s in items], np.int32)
    out = model.apply(
        variables, jnp.asarray(text), jnp.asarray(text_len), jnp.asarray(mel), jnp.asarray(mel_len), train=False,
        speaker=jnp.asarray(speaker) if model.cfg.n_speakers else None, rngs={"dropout": rng},
    )  # fmt: skip
    post = np.asarray(jax.device_get(out.mel_post))
    return [post[i, : mel_len[i]] for i in range(len(items))]


def write_teacher_forced(
    checkpoint: str, filelists: Sequence[str], out_dir: str, batch_size: int = 8, overrides: Sequence[str] = ()
) -> dict[str, float]:
    """Write the teacher-forced mels and filelists (see the module docstring); returns, per filelist written, the
    mean |teacher-forced - ground truth| of its log-mels."""
    from taco_jax.checkpoint import restore_model, restore_symbols

    cfg, model, variables = restore_model(checkpoint, overrides)
    table = restore_symbols(checkpoint)
    out, taken, errors = Path(out_dir), set(), {}
    rng = jax.random.PRNGKey(0)
    for path in filelists:
        utterances = read_filelist(path)
        if not utterances:
            raise DataError(f"{path}: no utterances")
        names, diffs = _mel_names(utterances, taken), []
        order = sorted(range(len(utterances)), key=lambda i: len(utterances[i].text))
        r = model.cfg.n_frames_per_step
        for start in range(0, len(order), batch_size):
            indices = order[start : start + batch_size]
            chunk = [utterances[i] for i in indices]
            items = [
                (text_to_sequence(u.text, table, cfg.text.cleaners, cfg.text.add_eos)[0],
                 mel_spectrogram(load_wav(u.wav_path, cfg.audio.sampling_rate), cfg.audio), u.speaker)
                for u in chunk
            ]  # fmt: skip
            for i, (_, truth, _), mel in zip(indices, items, _forward(model, variables, items, r, rng), strict=True):
                with atomic_output(out / "mels" / names[i]) as tmp:
                    np.save(tmp, mel.astype(np.float32))
                diffs.append(float(np.mean(np.abs(mel - truth))))
        lines = [f"{u.wav_path}|mels/{name}" for u, name in zip(utterances, names, strict=True)]
        write_text_atomic(out / Path(path).name, "\n".join(lines) + "\n")
        errors[str(out / Path(path).name)] = float(np.mean(diffs))
    return errors


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m taco_jax.synthesize.teacher_forced", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--checkpoint", required=True, help="Tacotron 2 run directory, checkpoints or step directory")
    parser.add_argument("--filelist", action="append", required=True, help="path|text[|speaker] list (repeatable)")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        names = [Path(f).name for f in args.filelist]
        if len(set(names)) != len(names):
            raise DataError(f"filelists with the same name would overwrite each other: {', '.join(args.filelist)}")
        for written, err in write_teacher_forced(
            args.checkpoint, args.filelist, args.out_dir, args.batch_size, args.set
        ).items():
            print(f"{os.path.relpath(written)}: mean |teacher-forced - ground truth| = {err:.3f} (log-mel)")
        return 0
    except BaseException as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage="teacher-forced mels")


if __name__ == "__main__":
    sys.exit(main())
