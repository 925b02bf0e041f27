"""eSpeak NG through ctypes: deterministic speech with word timings, no downloads.

The `espeakng-loader` wheel ships libespeak-ng and its voice data; this module loads the library with ctypes
and renders text to 16-bit PCM at eSpeak's native rate (22050 Hz), reporting where each word starts.
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from typing import NamedTuple

import numpy as np

__all__ = ["WordTiming", "espeak_version", "synthesize_espeak", "synthesize_espeak_words"]

_KEEP_SILENCE_S = 0.05  # silence kept at each end after trimming

# Constants of eSpeak NG's C API (speak_lib.h).
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_ESPEAK_INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when data is missing
_ESPEAK_RATE = 1  # espeak_PARAMETER
_POS_CHARACTER = 1  # espeak_POSITION_TYPE
_ESPEAK_CHARS_UTF8 = 1
_EE_OK = 0

_EVENT_LIST_TERMINATED = 0  # espeak_EVENT_TYPE
_EVENT_WORD = 1


class _Event(ctypes.Structure):
    """espeak_EVENT (speak_lib.h)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character position in the input text
        ("length", ctypes.c_int),  # characters
        ("audio_position", ctypes.c_int),  # ms
        ("sample", ctypes.c_int),  # samples from the start of the utterance
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # union {int number; const char *name; char string[8]}
    ]


_SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class WordTiming(NamedTuple):
    """Where eSpeak NG started speaking one word of its input text."""

    char_start: int  # 0-based index of the word's first character in the text
    n_chars: int
    sample: int  # first sample of the word in the (trimmed) audio


class _ESpeak:
    """libespeak-ng through ctypes; one per process (see `_engine`), calls serialised by `lock`.

    eSpeak keeps synthesis state in C statics that `espeak_Initialize` does not reset (the pitch-flutter
    phase, the glottal cycle counter, the gain control), so the samples of an utterance would depend on
    everything said before it in the process. The corpus must come out byte-identical on every build, so
    the library is unloaded and loaded afresh around every utterance (about 3 ms): an utterance is then a
    pure function of its text, voice and rate.
    """

    def __init__(self) -> None:
        import espeakng_loader

        self.lib_path = espeakng_loader.get_library_path()
        self.data_path = espeakng_loader.get_data_path().encode()
        self.lock = threading.Lock()
        self._chunks: list[np.ndarray] = []
        self._words: list[WordTiming] = []
        # Keep a reference: ctypes frees the trampoline when the Python object dies, and the library would
        # then call into freed memory.
        self._callback = _SYNTH_CALLBACK(self._on_samples)
        lib, self.sample_rate = self._load()
        self.version = (lib.espeak_Info(None) or b"?").decode()
        self._unload(lib)

    def _load(self) -> tuple[ctypes.CDLL, int]:
        lib = ctypes.CDLL(self.lib_path)
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_SYNTH_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
            ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data_path, _ESPEAK_INITIALIZE_DONT_EXIT)
        if rate <= 0:
            self._unload(lib, terminate=False)
            raise RuntimeError(f"espeak_Initialize failed ({rate}) with data path {self.data_path.decode()!r}")
        lib.espeak_SetSynthCallback(self._callback)
        return lib, int(rate)

    @staticmethod
    def _unload(lib: ctypes.CDLL, terminate: bool = True) -> None:
        if terminate:
            lib.espeak_Terminate()
        close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
        if close is not None:  # the statics are fresh on the next load only once the last handle is closed
            close(lib._handle)

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
        with self.lock:
            lib, _ = self._load()
            try:
                if lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                    raise ValueError(f"eSpeak NG has no voice {voice!r}")
                lib.espeak_SetParameter(_ESPEAK_RATE, int(words_per_minute), 0)
                self._chunks, self._words = [], []
                err = lib.espeak_Synth(buf, len(buf), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None)
                if err != _EE_OK:
                    raise RuntimeError(f"espeak_Synth failed ({err}) for {text[:60]!r}")
                lib.espeak_Synchronize()
                chunks, words, self._chunks, self._words = self._chunks, self._words, [], []
            finally:
                self._unload(lib)
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
