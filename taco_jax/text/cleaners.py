"""Text cleaners: named string -> string normalisations applied before symbol lookup.

Select them by name (`TextConfig.cleaners`); they run in the given order. Every cleaner lowercases,
collapses runs of whitespace to one space and strips the ends.
"""

from __future__ import annotations

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


def clean_text(text: str, cleaner_names: Sequence[str]) -> str:
    """Apply the named cleaners in order; ValueError naming an unknown cleaner."""
    if isinstance(cleaner_names, str):  # a bare string would silently iterate over its characters
        cleaner_names = [cleaner_names]
    for name in cleaner_names:
        cleaner = CLEANERS.get(name)
        if cleaner is None:
            raise ValueError(f"unknown text cleaner {name!r}; known: {', '.join(sorted(CLEANERS))}")
        text = cleaner(text)
    return text
