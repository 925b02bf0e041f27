"""libespeak-ng through ctypes: loading, C signatures, initialisation, voices. Shared by text/ and demo/.

The `espeakng-loader` wheel ships libespeak-ng (1.52) and its voice data, so nothing is downloaded. eSpeak NG
keeps all of its state in C globals, so a process has exactly one instance of it: every use goes through
`LOCK`, and the library is reached only through the two context managers here, which agree on who holds it.

- `fresh_library`: loads the library afresh and unloads it afterwards. Synthesis needs this: eSpeak keeps
  synthesis state in C statics that `espeak_Initialize` does not reset (the pitch-flutter phase, the glottal
  cycle counter, the gain control), and only unloading the shared object (its last handle closed) resets them.
- `kept_library`: one handle kept loaded between calls, with the voice last selected on it. Phonemisation
  uses this: setting a voice loads its dictionary (about 20 ms), too slow to repeat for every sentence.

`fresh_library` first unloads the kept handle, since an open handle would keep the statics alive.
Importing this module has no side effect; the library is loaded on first use.
"""

from __future__ import annotations

import _ctypes
import ctypes
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

__all__ = [
    "AUDIO_OUTPUT_SYNCHRONOUS",
    "CHARS_UTF8",
    "EE_OK",
    "LOCK",
    "PHONEMES_IPA",
    "SYNTH_CALLBACK",
    "Event",
    "VoiceInfo",
    "available_voices",
    "fresh_library",
    "kept_library",
    "select_voice",
]

# Constants of eSpeak NG's C API (speak_lib.h).
AUDIO_OUTPUT_SYNCHRONOUS = 2
INITIALIZE_DONT_EXIT = 0x8000  # return an error instead of calling exit() when data is missing
CHARS_UTF8 = 1  # espeakCHARS_UTF8
PHONEMES_IPA = 0x02  # espeak_TextToPhonemes phonememode bit 1: IPA instead of eSpeak's ASCII mnemonics
EE_OK = 0

# All eSpeak calls, in every thread and module, are serialised by this lock (re-entrant, so a holder may call
# `available_voices` or `select_voice` again).
LOCK = threading.RLock()


class Event(ctypes.Structure):
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


SYNTH_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(Event))


class _Voice(ctypes.Structure):
    """espeak_VOICE (speak_lib.h)."""

    _fields_ = [
        ("name", ctypes.c_char_p),
        # (priority byte, zero-terminated language code) pairs, ended by a zero priority byte
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class VoiceInfo(NamedTuple):
    """One voice of the bundled data; `name`, `identifier` and each of `languages` select it."""

    name: str  # e.g. "English (America)"
    identifier: str  # data file, e.g. "gmw/en-US"
    languages: tuple[str, ...]  # e.g. ("en-us", "en"), most specific first


def _paths() -> tuple[str, bytes]:
    import espeakng_loader  # deferred: importing this module must not touch the wheel

    return espeakng_loader.get_library_path(), espeakng_loader.get_data_path().encode()


def _declare(lib: ctypes.CDLL) -> None:
    """Set the C signatures of every function used (ctypes would otherwise truncate pointers to int)."""
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetSynthCallback.argtypes = [SYNTH_CALLBACK]
    lib.espeak_SetSynthCallback.restype = None
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
    lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
    lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
        ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
    ]  # fmt: skip
    lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
    lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
    lib.espeak_Info.argtypes = [ctypes.c_void_p]
    lib.espeak_Info.restype = ctypes.c_char_p


def _load(callback: ctypes._CFuncPtr | None) -> tuple[ctypes.CDLL, int]:
    """Open a handle, declare the signatures and initialise (synchronous output); (lib, sample rate in Hz)."""
    lib_path, data_path = _paths()
    lib = ctypes.CDLL(lib_path)
    _declare(lib)
    rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, INITIALIZE_DONT_EXIT)
    if rate <= 0:
        _unload(lib, terminate=False)
        raise RuntimeError(f"espeak_Initialize failed ({rate}) with data path {data_path.decode()!r}")
    if callback is not None:
        lib.espeak_SetSynthCallback(callback)
    return lib, int(rate)


def _unload(lib: ctypes.CDLL, terminate: bool = True) -> None:
    if terminate:
        lib.espeak_Terminate()
    close = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
    if close is not None:  # the statics are fresh on the next load only once the last handle is closed
        close(lib._handle)


# The kept handle and the voice last selected on it; guarded by LOCK.
_kept: ctypes.CDLL | None = None
_kept_voice: str | None = None


def _drop_kept() -> None:
    global _kept, _kept_voice
    if _kept is not None:
        lib, _kept, _kept_voice = _kept, None, None
        _unload(lib)


@contextmanager
def fresh_library(callback: ctypes._CFuncPtr | None = None) -> Iterator[tuple[ctypes.CDLL, int]]:
    """Hold `LOCK`, load the library afresh and initialise it; yields (lib, sample rate in Hz); unloads on exit.

    `callback` (a `SYNTH_CALLBACK`; the caller keeps it alive) receives the samples of `espeak_Synth`.
    Whatever ran before, the C statics start from their initial values, so synthesis is a pure function of
    its inputs (about 3 ms per load).
    """
    with LOCK:
        _drop_kept()
        lib, rate = _load(callback)
        try:
            yield lib, rate
        finally:
            _unload(lib)


@contextmanager
def kept_library() -> Iterator[ctypes.CDLL]:
    """Hold `LOCK` and yield the handle kept loaded between calls (loaded on first use, no synth callback)."""
    global _kept
    with LOCK:
        if _kept is None:
            _kept, _ = _load(None)
        yield _kept


def library_version() -> str:
    """The loaded libespeak-ng's version string, e.g. "1.52.0" (recorded with phoneme front ends)."""
    with kept_library() as lib:
        return (lib.espeak_Info(None) or b"?").decode()


def _voice_list(lib: ctypes.CDLL) -> list[VoiceInfo]:
    voices = lib.espeak_ListVoices(None)
    out: list[VoiceInfo] = []
    i = 0
    while voices[i]:
        v = voices[i].contents
        languages: list[str] = []
        p = v.languages
        while p and ctypes.c_ubyte.from_address(p).value:  # priority byte, 0 ends the list
            code = ctypes.string_at(p + 1)
            languages.append(code.decode())
            p += len(code) + 2
        out.append(VoiceInfo(v.name.decode(), v.identifier.decode(), tuple(languages)))
        i += 1
    return out


def available_voices() -> list[VoiceInfo]:
    """Every voice of the bundled data (about 140), in eSpeak's order.

    Any of a voice's `name`, `identifier`, its file name (the identifier after the last '/') or `languages`
    selects it in `select_voice`, e.g. "en-us", "en-gb", "en", "ru", "de", "fr-fr", "English (America)".
    """
    global _kept_voice
    with kept_library() as lib:
        voices = _voice_list(lib)
        _kept_voice = None  # the scan rebuilds eSpeak's voice list; select the voice again before the next use
        return voices


def select_voice(lib: ctypes.CDLL, voice: str) -> None:
    """Make `voice` the current voice of `lib`: a voice name or file name first (espeak_SetVoiceByName), else
    a language code such as "en-gb" (espeak_SetVoiceByProperties, the fallback the espeak-ng command line
    uses). ValueError naming the voice if neither knows it. The caller holds `LOCK`.
    """
    global _kept_voice
    if lib is _kept and voice == _kept_voice:
        return
    # An empty name would select eSpeak's default voice, and a NUL would cut the C string short.
    ok = bool(voice) and "\0" not in voice and lib.espeak_SetVoiceByName(voice.encode()) == EE_OK
    if not ok and voice and "\0" not in voice:
        code = ctypes.create_string_buffer(voice.encode())  # a named local keeps it alive through the call
        selector = _Voice()
        selector.languages = ctypes.addressof(code)
        ok = lib.espeak_SetVoiceByProperties(ctypes.byref(selector)) == EE_OK
    if lib is _kept:
        _kept_voice = voice if ok else None
    if not ok:
        raise ValueError(
            f"eSpeak NG has no voice or language {voice!r}; taco_jax.espeak_ng.available_voices() lists them "
            "(a voice's name, identifier or any of its language codes works, e.g. 'en-us', 'en-gb', 'ru', 'de')"
        )
