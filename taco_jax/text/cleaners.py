"""Text cleaners: named string -> string normalisations applied before symbol lookup.

Select them by name (`TextConfig.cleaners`); they run in the given order. Every cleaner lowercases,
collapses runs of whitespace to one space and strips the ends. A cleaner that takes an argument is written
"name:argument" (for example "espeak_ipa:ru"); its factory in `CLEANER_FACTORIES` builds it once per argument.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence

from unidecode import unidecode

from taco_jax.text.numbers import normalize_numbers

_WHITESPACE_RE = re.compile(r"\s+")

# Spoken forms of abbreviations that are written with a trailing period.
_ABBREVIATIONS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(rf"\b{abbr}\.", re.IGNORECASE), spoken)
    for abbr, spoken in (
        ("mrs", "missus"),
        ("mr", "mister"),
        ("drs", "doctors"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("maj", "major"),
        ("gen", "general"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
    )
)


def collapse_whitespace(text: str) -> str:
    return _WHITESPACE_RE.sub(" ", text).strip()


def expand_abbreviations(text: str) -> str:
    for pattern, spoken in _ABBREVIATIONS:
        text = pattern.sub(spoken, text)
    return text


def convert_to_ascii(text: str) -> str:
    return unidecode(text)


def basic_cleaners(text: str) -> str:
    """Lowercase and collapse whitespace; keeps non-ASCII characters (for non-English symbol tables)."""
    return collapse_whitespace(text.lower())


def transliteration_cleaners(text: str) -> str:
    """Transliterate to ASCII ("café" -> "cafe"), lowercase, collapse whitespace."""
    return collapse_whitespace(convert_to_ascii(text).lower())


def english_cleaners(text: str) -> str:
    """ASCII, lowercase, numbers and abbreviations spelled out, whitespace collapsed.

    "Dr. Smith paid $3.50." -> "doctor smith paid three dollars, fifty cents."
    """
    # Numbers first: unidecode would turn "£" into "PS" and "€" into "EUR" before they could be read.
    text = normalize_numbers(text)
    text = convert_to_ascii(text).lower()
    text = expand_abbreviations(text)
    return collapse_whitespace(text)


def t2n_transliteration_cleaners(text: str) -> str:
    """Tacotron2-New's original front end (before its stress dictionary, which is not available here):
    lowercase, transliterate to ASCII, collapse whitespace, end on . ! or ?, wrap in its S...E markers.
    Stress marks typed by the user ('+' before the stressed vowel) are kept.

    "Н+очь, +улица, фон+арь, апт+ека." -> "Sn+och', +ulitsa, fon+ar', apt+eka.E"
    """
    text = collapse_whitespace(convert_to_ascii(text.lower()))
    if text.endswith(","):
        text = text[:-1] + "."
    if not text.endswith((".", "!", "?")):
        text += "."
    return f"S{text}E"


CLEANERS: dict[str, Callable[[str], str]] = {
    "t2n_transliteration_cleaners": t2n_transliteration_cleaners,
    "basic_cleaners": basic_cleaners,
    "transliteration_cleaners": transliteration_cleaners,
    "english_cleaners": english_cleaners,
}


# Cleaners with an argument ("name:argument"): name -> factory(argument) -> cleaner. A factory validates its
# argument eagerly (ValueError naming it) so a bad config fails before any text is cleaned.
CLEANER_FACTORIES: dict[str, Callable[[str], Callable[[str], str]]] = {}


def _espeak_ipa(voice: str) -> Callable[[str], str]:
    """`espeak_ipa:VOICE` ("espeak_ipa:en-us", "espeak_ipa:ru"): IPA from eSpeak NG, for the `ipa_v1` table.

    See `taco_jax.text.phonemes.espeak_ipa_cleaner`; ValueError here for a voice eSpeak does not know.
    """
    # Deferred so that configs without this cleaner never touch the eSpeak binding.
    from taco_jax.text.phonemes import espeak_ipa_cleaner

    return espeak_ipa_cleaner(voice)


CLEANER_FACTORIES["espeak_ipa"] = _espeak_ipa


def _russian_cleaners(text: str) -> str:
    """Russian graphemes for the `russian_v1` table: numbers, abbreviations and Latin words spelled in Cyrillic.

    "В 1999 году — 15%" -> "в тысяча девятьсот девяносто девятом году, пятнадцать процентов"; see
    `taco_jax.text.russian.russian_cleaners`.
    """
    # Deferred so that configs without it never load num2words or pymorphy3's dictionaries.
    from taco_jax.text.russian import russian_cleaners

    return russian_cleaners(text)


def _russian_stress(path: str) -> Callable[[str], str]:
    """`russian_stress:PATH`: "+" stress marks (and ё) from a `word|w+ord` dictionary, after `russian_cleaners`.

    See `taco_jax.text.stress`; StressDictionaryError (a ValueError) here for a missing or malformed file.
    """
    from taco_jax.text.stress import russian_stress_cleaner

    return russian_stress_cleaner(path)


CLEANERS["russian_cleaners"] = _russian_cleaners
CLEANER_FACTORIES["russian_stress"] = _russian_stress


def known_cleaners() -> list[str]:
    """Every cleaner name a config may use; parametrised ones as "name:ARG"."""
    return sorted([*CLEANERS, *(f"{name}:ARG" for name in CLEANER_FACTORIES)])


@functools.lru_cache(maxsize=32)
def _build_cleaner(name: str, argument: str) -> Callable[[str], str]:
    return CLEANER_FACTORIES[name](argument)


def get_cleaner(spec: str) -> Callable[[str], str]:
    """The cleaner a config names: "name" or "name:argument"; ValueError for an unknown name or a bad argument."""
    name, colon, argument = spec.partition(":")
    if colon:
        if name not in CLEANER_FACTORIES:
            raise ValueError(f"unknown text cleaner {spec!r}; known: {', '.join(known_cleaners())}")
        if not argument:
            raise ValueError(f"text cleaner {spec!r} needs an argument after ':' (as in {name}:ARG)")
        return _build_cleaner(name, argument)
    cleaner = CLEANERS.get(spec)
    if cleaner is None:
        hint = f" (it takes an argument: {spec}:ARG)" if spec in CLEANER_FACTORIES else ""
        raise ValueError(f"unknown text cleaner {spec!r}{hint}; known: {', '.join(known_cleaners())}")
    return cleaner


def clean_text(text: str, cleaner_names: Sequence[str]) -> str:
    """Apply the named cleaners in order; ValueError naming an unknown cleaner."""
    if isinstance(cleaner_names, str):  # a bare string would silently iterate over its characters
        cleaner_names = [cleaner_names]
    for name in cleaner_names:
        text = get_cleaner(name)(text)
    return text
