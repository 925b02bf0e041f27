"""Decoding source recordings of any format the installed decoders read, and resampling.

libsndfile (through soundfile) reads WAV, FLAC, OGG and, from libsndfile 1.1 on, MP3. Anything it cannot
read goes to librosa.load, which tries audioread's backends (ffmpeg, GStreamer, Core Audio) where installed.
"""

from __future__ import annotations

import warnings

import numpy as np
import soundfile as sf
import soxr

from taco_jax.audio import AudioError, check_audio_file, check_samples


def decode_audio(path: str) -> tuple[np.ndarray, int]:
    """(mono float32 waveform [samples], its sample rate in Hz) of the file at `path`, at the file's own rate.

    Channels are averaged; values are as decoded (a lossy file may overshoot [-1, 1] slightly). Raises
    AudioError (message starting with `path`) when the file is missing, empty, undecodable or holds non-finite
    samples.
    """
    check_audio_file(path)
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
        wav = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    except Exception as e:  # libsndfile raises several types (LibsndfileError, RuntimeError, TypeError)
        wav, rate = _decode_fallback(path, getattr(e, "error_string", None) or str(e))
    check_samples(path, wav)
    return np.ascontiguousarray(wav, dtype=np.float32), int(rate)


def _decode_fallback(path: str, soundfile_error: str) -> tuple[np.ndarray, int]:
    """librosa.load at the native rate (audioread where installed); AudioError with libsndfile's reason."""
    try:
        import librosa

        with warnings.catch_warnings():  # librosa warns that it falls back to audioread: that is the intent here
            warnings.simplefilter("ignore")
            wav, rate = librosa.load(path, sr=None, mono=True, dtype=np.float32)
    except Exception:  # noqa: BLE001 — audioread raises its own types (NoBackendError, DecodeError, ...)
        raise AudioError(f"{path}: cannot decode audio: {soundfile_error}") from None
    return np.asarray(wav, dtype=np.float32), int(rate)


def resample(wav: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """`wav` [samples] at `rate` Hz -> float32 [samples'] at `target_rate` Hz (soxr HQ, as taco_jax.audio
    does for the trainer), clipped to [-1, 1]."""
    if rate != target_rate:
        wav = soxr.resample(wav, rate, target_rate, quality="HQ")
    return np.clip(wav, -1.0, 1.0).astype(np.float32, copy=False)
