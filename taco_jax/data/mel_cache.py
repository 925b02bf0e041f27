"""On-disk cache of log-mel spectrograms.

Layout: `<cache_dir>/<hash of the AudioConfig>/<sha1 of (abspath, size, mtime_ns)>.npy`. Changing any audio
setting selects a fresh sub-directory, and editing a wav changes its key, so a stale mel is never served.
Files are written through taco_jax.files.atomic_output, so a crash never leaves a truncated .npy.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

import numpy as np
import platformdirs

from taco_jax.audio import AudioError, load_wav, mel_spectrogram
from taco_jax.config import AudioConfig
from taco_jax.files import atomic_output

# Bump when the mel computation changes in a way the AudioConfig does not capture.
_MEL_VERSION = 1


def default_cache_dir() -> str:
    """`<user cache dir>/taco_jax/mels` (used when `data.cache_dir` is "")."""
    return os.path.join(platformdirs.user_cache_dir("taco_jax"), "mels")


def audio_config_hash(audio_cfg: AudioConfig) -> str:
    """Short (12 hex) stable hash of every AudioConfig field plus the mel-code version."""
    blob = json.dumps({"v": _MEL_VERSION, **dataclasses.asdict(audio_cfg)}, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


class MelCache:
    """Compute-once store of log-mels ([frames, n_mels] float32, natural-log) keyed by wav file identity."""

    def __init__(self, cache_dir: str | os.PathLike[str] | None, audio_cfg: AudioConfig):
        root = os.fspath(cache_dir) if cache_dir else default_cache_dir()
        self.audio_cfg = audio_cfg
        self.dir = os.path.join(os.path.abspath(os.path.expanduser(root)), audio_config_hash(audio_cfg))

    def path_for(self, wav_path: str | os.PathLike[str]) -> str:
        """Cache file for the wav as it is now on disk. Raises AudioError when the wav does not exist."""
        wav_path = os.path.abspath(os.fspath(wav_path))
        try:
            st = os.stat(wav_path)
        except FileNotFoundError:
            raise AudioError(f"{wav_path}: audio file not found") from None
        except OSError as e:
            raise AudioError(f"{wav_path}: cannot open audio file: {e.strerror or e}") from None
        key = hashlib.sha1(f"{wav_path}\0{st.st_size}\0{st.st_mtime_ns}".encode()).hexdigest()
        return os.path.join(self.dir, key + ".npy")

    def get(self, wav_path: str | os.PathLike[str]) -> np.ndarray:
        """Log-mel of `wav_path`, [frames, n_mels] float32; computed and stored on the first call.

        Raises AudioError (message starting with the path) on a missing or unreadable wav.
        """
        cached = self.path_for(wav_path)
        mel = self._load(cached)
        if mel is not None:
            return mel
        wav = load_wav(os.fspath(wav_path), self.audio_cfg.sampling_rate)
        try:
            mel = np.asarray(mel_spectrogram(wav, self.audio_cfg), dtype=np.float32)
        except ValueError as e:  # e.g. a one-sample file: a bad item, not a crash
            raise AudioError(f"{wav_path}: cannot compute a mel spectrogram: {e}") from None
        if mel.ndim != 2 or mel.shape[1] != self.audio_cfg.n_mels:
            raise ValueError(f"{wav_path}: mel_spectrogram returned shape {mel.shape}, expected [frames, n_mels]")
        self._store(cached, mel)
        return mel

    def _load(self, path: str) -> np.ndarray | None:
        try:
            mel = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError):
            return None  # unreadable (e.g. written by another numpy or a full disk): recompute and overwrite
        if mel.ndim != 2 or mel.shape[1] != self.audio_cfg.n_mels or mel.dtype != np.float32:
            return None
        return mel

    def _store(self, path: str, mel: np.ndarray) -> None:
        """Write mel [frames, n_mels] float32 to `path` atomically; concurrent writers race to equal content."""
        with atomic_output(path) as tmp, open(tmp, "wb") as f:
            np.save(f, mel, allow_pickle=False)
