"""eSpeak NG speech: deterministic audio with word timings, no downloads.

The `espeakng-loader` wheel ships libespeak-ng and its voice data; `taco_jax.espeak_ng` loads the library
with ctypes, and this module renders text to 16-bit PCM at eSpeak's native rate (22050 Hz), reporting where
each word starts.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

import numpy as np

from taco_jax import espeak_ng

__all__ = ["WordTiming", "espeak_version", "synthesize_espeak", "synthesize_espeak_words"]

_KEEP_SILENCE_S = 0.05  # silence kept at each end after trimming

# Constants of eSpeak NG's C API (speak_lib.h).
_ESPEAK_RATE = 1  # espeak_PARAMETER
_POS_CHARACTER = 1  # espeak_POSITION_TYPE

_EVENT_LIST_TERMINATED = 0  # espeak_EVENT_TYPE
_EVENT_WORD = 1


class WordTiming(NamedTuple):
    """Where eSpeak NG started speaking one word of its input text."""

    char_start: int  # 0-based index of the word's first character in the text
    n_chars: int
    sample: int  # first sample of the word in the (trimmed) audio


class _ESpeak:
    """Speech from libespeak-ng (loaded by `taco_jax.espeak_ng`); one per process (see `_engine`).

    eSpeak keeps synthesis state in C statics that `espeak_Initialize` does not reset (the pitch-flutter
    phase, the glottal cycle counter, the gain control), so the samples of an utterance would depend on
    everything said before it in the process. The corpus must come out byte-identical on every build, so
    every utterance runs in `espeak_ng.fresh_library` (unloaded and loaded afresh, about 3 ms): an utterance
    is then a pure function of its text, voice and rate, whatever was synthesized or phonemised before.
    """

    def __init__(self) -> None:
        self._chunks: list[np.ndarray] = []
        self._words: list[WordTiming] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies, and the library would
        # then call into freed memory.
        self._callback = espeak_ng.SYNTH_CALLBACK(self._on_samples)
        with espeak_ng.fresh_library(self._callback) as (lib, self.sample_rate):
            self.version = (lib.espeak_Info(None) or b"?").decode()

    def _on_samples(self, wav, n: int, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events and events[i].type != _EVENT_LIST_TERMINATED:
            e = events[i]
            if e.type == _EVENT_WORD:
                self._words.append(WordTiming(e.text_position - 1, e.length, e.sample))
            i += 1
        return 0  # 0 = continue synthesis

    def synth(self, text: str, voice: str, words_per_minute: int) -> tuple[np.ndarray, list[WordTiming]]:
        """(int16 samples at `self.sample_rate` [n], the start of every word in `text`)."""
        buf = text.encode("utf-8") + b"\0"
        with espeak_ng.fresh_library(self._callback) as (lib, _):
            if lib.espeak_SetVoiceByName(voice.encode()) != espeak_ng.EE_OK:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
            self._chunks, self._words = [], []
            err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, espeak_ng.CHARS_UTF8, None, None)
            if err != espeak_ng.EE_OK:
                raise RuntimeError(f"espeak_Synth failed ({err}) for {text[:60]!r}")
            lib.espeak_Synchronize()
            chunks, words, self._chunks, self._words = self._chunks, self._words, [], []
        return (np.concatenate(chunks) if chunks else np.zeros(0, np.int16)), words


_ENGINE: _ESpeak | None = None
_ENGINE_LOCK = threading.Lock()


def _engine() -> _ESpeak:
    """The process-wide eSpeak instance, initialised on first use."""
    global _ENGINE
    if _ENGINE is None:
        with _ENGINE_LOCK:
            if _ENGINE is None:
                _ENGINE = _ESpeak()
    return _ENGINE


def espeak_version() -> str:
    """The loaded libespeak-ng's version string (recorded in the demo corpus's meta.json)."""
    return _engine().version


def _speech_bounds(x: np.ndarray, sample_rate: int, keep_s: float = _KEEP_SILENCE_S) -> tuple[int, int]:
    """[start, end) of `x` without leading/trailing silence (10 ms frames below -40 dB of the peak frame),
    keeping `keep_s` of it each side."""
    frame = max(1, sample_rate // 100)
    n_frames = len(x) // frame
    if n_frames == 0:
        return 0, len(x)
    rms = np.sqrt(np.mean(x[: n_frames * frame].reshape(n_frames, frame) ** 2, axis=1))
    loud = np.flatnonzero(rms > 0.01 * rms.max())
    if loud.size == 0:
        return 0, 0
    keep = int(round(keep_s * sample_rate))
    return max(0, loud[0] * frame - keep), min(len(x), (loud[-1] + 1) * frame + keep)


def synthesize_espeak_words(
    text: str, voice: str = "en-us", words_per_minute: int = 175
) -> tuple[np.ndarray, int, list[WordTiming]]:
    """Speak `text` with eSpeak NG and report where each word starts.

    Returns (audio, sample_rate, words): float32 mono in [-1, 1], shape [n_samples], at eSpeak's native rate
    (22050 Hz), with leading/trailing silence trimmed to about 50 ms; `words` in text order, their sample
    positions relative to the trimmed audio (clipped to it). The text is spoken as given (no cleaning).
    Deterministic: the same arguments give the same samples whatever was synthesized before.
    Thread-safe (calls are serialised); roughly 100-400x faster than real time on one core.
    """
    engine = _engine()
    pcm, words = engine.synth(text, voice, words_per_minute)
    audio = pcm.astype(np.float32) / 32768.0
    start, end = _speech_bounds(audio, engine.sample_rate)
    trimmed = [w._replace(sample=min(max(w.sample - start, 0), end - start)) for w in words]
    return audio[start:end], engine.sample_rate, trimmed


def synthesize_espeak(text: str, voice: str = "en-us", words_per_minute: int = 175) -> tuple[np.ndarray, int]:
    """(audio, sample_rate) of `synthesize_espeak_words`, without the word timings."""
    audio, sample_rate, _ = synthesize_espeak_words(text, voice, words_per_minute)
    return audio, sample_rate
