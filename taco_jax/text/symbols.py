"""Versioned symbol tables: the mapping from text symbols to integer ids.

A table is identified by its name and version and guarded by a fingerprint of its ordered symbols, so a
checkpoint can record the table it was trained with and refuse to run with a different id order.
Id 0 is always the padding symbol.
"""

from __future__ import annotations

import functools
import hashlib
import json
import string
from dataclasses import dataclass
from typing import Any

# CMUdict's 84 ARPAbet symbols (39 phonemes, vowels with stress 0/1/2), in the fixed order that
# keithito/NVIDIA tacotron2 use. Spelled out here rather than read from the cmudict package so the
# id order of a published table can never drift with a package upgrade (a test cross-checks it).
ARPABET: tuple[str, ...] = (
    "AA", "AA0", "AA1", "AA2", "AE", "AE0", "AE1", "AE2", "AH", "AH0", "AH1", "AH2",
    "AO", "AO0", "AO1", "AO2", "AW", "AW0", "AW1", "AW2", "AY", "AY0", "AY1", "AY2",
    "B", "CH", "D", "DH", "EH", "EH0", "EH1", "EH2", "ER", "ER0", "ER1", "ER2", "EY",
    "EY0", "EY1", "EY2", "F", "G", "HH", "IH", "IH0", "IH1", "IH2", "IY", "IY0", "IY1",
    "IY2", "JH", "K", "L", "M", "N", "NG", "OW", "OW0", "OW1", "OW2", "OY", "OY0",
    "OY1", "OY2", "P", "R", "S", "SH", "T", "TH", "UH", "UH0", "UH1", "UH2", "UW",
    "UW0", "UW1", "UW2", "V", "W", "Y", "Z", "ZH",
)  # fmt: skip

ARPABET_PREFIX = "@"  # marks an ARPAbet symbol so "@AA" can never collide with the letters "AA"

_PAD = "_"
_SPECIAL = "-"
_PUNCTUATION = "!'(),.:;? "
_LETTERS = string.ascii_uppercase + string.ascii_lowercase
_CYRILLIC = "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"  # Russian lowercase, ё included (33 letters)
_STRESS = "+"  # written before the stressed vowel ("прив+ет"), as in Tacotron2-New's dictionary
_EOS = "~"


@dataclass(frozen=True)
class SymbolTable:
    """An ordered, immutable symbol inventory; a symbol's id is its index in `symbols`.

    `symbols[0]` is the padding symbol (id 0). `eos`, when set, is the end-of-sentence symbol appended by
    `text_to_sequence(..., add_eos=True)`.
    """

    name: str
    version: int
    symbols: tuple[str, ...]
    eos: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"symbol table name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValueError(f"symbol table {self.name!r}: version must be an int >= 1, got {self.version!r}")
        if not isinstance(self.symbols, tuple) or not self.symbols:
            raise ValueError(f"symbol table {self.name!r}: symbols must be a non-empty tuple")
        bad = [s for s in self.symbols if not isinstance(s, str) or not s]
        if bad:
            raise ValueError(f"symbol table {self.name!r}: symbols must be non-empty strings, got {bad[:5]!r}")
        if len(set(self.symbols)) != len(self.symbols):
            dupes = sorted({s for s in self.symbols if self.symbols.count(s) > 1})
            raise ValueError(f"symbol table {self.name!r}: duplicate symbols {dupes!r}")
        if self.eos is not None and (self.eos not in self.symbols or self.eos == self.symbols[0]):
            raise ValueError(f"symbol table {self.name!r}: eos {self.eos!r} must be a non-pad symbol of the table")

    def __len__(self) -> int:
        return len(self.symbols)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def pad(self) -> str:
        return self.symbols[0]

    @property
    def eos_id(self) -> int | None:
        return None if self.eos is None else self.symbol_to_id[self.eos]

    @functools.cached_property
    def symbol_to_id(self) -> dict[str, int]:
        # cached_property writes to the instance __dict__, which a frozen dataclass still allows.
        return {s: i for i, s in enumerate(self.symbols)}

    def fingerprint(self) -> str:
        """First 16 hex digits of the sha256 of the ordered symbols (JSON-encoded, so unambiguous)."""
        blob = json.dumps(list(self.symbols), ensure_ascii=False).encode("utf-8")
        return hashlib.sha256(blob).hexdigest()[:16]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "symbols": list(self.symbols),
            "eos": self.eos,
            "fingerprint": self.fingerprint(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SymbolTable:
        """Inverse of `to_dict`; raises ValueError on missing/unknown keys, bad types or a fingerprint mismatch."""
        if not isinstance(d, dict):
            raise ValueError(f"symbol table must be a dict, got {type(d).__name__}")
        required = {"name", "version", "symbols"}
        missing = required - d.keys()
        unknown = d.keys() - required - {"eos", "fingerprint"}
        if missing or unknown:
            raise ValueError(f"symbol table dict: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}")
        if not isinstance(d["symbols"], list | tuple):
            raise ValueError("symbol table dict: 'symbols' must be a list of strings")
        table = cls(name=d["name"], version=d["version"], symbols=tuple(d["symbols"]), eos=d.get("eos"))
        fp = d.get("fingerprint")
        if fp is not None and fp != table.fingerprint():
            raise ValueError(
                f"symbol table {table.name!r} v{table.version}: fingerprint {fp!r} does not match its symbols "
                f"({table.fingerprint()!r}); the symbol list was edited"
            )
        return table


def _nvidia_symbols() -> tuple[str, ...]:
    # NVIDIA/tacotron2 text/symbols.py order: pad, special, punctuation, letters, '@'-ARPAbet.
    return (_PAD, _SPECIAL, *_PUNCTUATION, *_LETTERS, *(ARPABET_PREFIX + s for s in ARPABET))


def _t2n_symbols() -> tuple[str, ...]:
    # Tacotron2-New's text/symbols.py: its list has '$' twice, so id 52 is never produced (its dict maps '$'
    # to 56); a placeholder keeps every later id in place. 'S' / 'E' open and close every text.
    tail = ("+", "^", "<t2n-unused-52>", "#", "@", "*", "$", "%", "<", ">")
    return (_PAD, _SPECIAL, *_PUNCTUATION, *"0123456789", "S", "E", *string.ascii_lowercase, *tail)


def _t2n_legacy_symbols() -> tuple[str, ...]:
    # The legacy (creotiv) Tacotron2-New table: HEAD's without the digits and with '+' as the only stress mark,
    # so every letter's id is 10 below HEAD's.
    return (_PAD, _SPECIAL, *_PUNCTUATION, "S", "E", *string.ascii_lowercase, "+")


def _russian_symbols() -> tuple[str, ...]:
    # Native Cyrillic (no transliteration): pad, special, punctuation, the stress mark, the 33 letters, eos.
    return (_PAD, _SPECIAL, *_PUNCTUATION, _STRESS, *_CYRILLIC, _EOS)


# ipa_v1: what eSpeak NG 1.52 (the espeakng-loader wheel) writes for `taco_jax.text.phonemes.phonemize`, one
# symbol per Unicode code point. Found once by phonemising pangrams, prose, numbers and ~20k pseudo-words built
# from each alphabet with en-us, en-gb, ru, de, fr, es, it, uk and pl (the inventory stopped growing), and
# spelled out here so the ids never drift with an eSpeak upgrade. Fixed order forever: append in a new version.
_IPA_PROSODY = "ˈˌːˑ"  # primary and secondary stress (before the stressed vowel), long, half-long
# IPA letters those nine languages produce, by code point (ASCII a-z come separately, all 26).
_IPA_LETTERS = "æçðøŋœɐɑɒɔɕəɚɛɜɟɡɣɨɪɬɭɲɵɹɾʁʃʊʌʎʏʑʒʔʝβθᵻ"
# IPA letters other eSpeak voices produce (be, cs, da, hi, ja, sv, ta, vi, ...), by code point; those voices also
# write ASCII tone digits and capitals that are not in this table (text_to_sequence counts them as dropped).
_IPA_LETTERS_OTHER = "äħɖɗɘɤɫɯɳɻɽʀʂʈʉʋʐʕʦχ"
_IPA_MODIFIERS = "ʰʲᵝ"  # aspirated, palatalised, (ja) labialised
_IPA_COMBINING: tuple[str, ...] = (
    "\u0303",  # tilde: nasal (fr, pl, de loans)
    "\u030a",  # ring above: voiceless
    "\u031d",  # up tack below: raised
    "\u031e",  # down tack below: lowered
    "\u0329",  # vertical line below: syllabic (en "button")
    "\u032a",  # bridge below: dental (uk)
    "\u032f",  # inverted breve below: non-syllabic
    "\u033a",  # inverted bridge below: apical
    "\u033b",  # square below: laminal
    "\u0361",  # tie bar, as in t͡s (eSpeak writes it when asked to tie multi-letter phonemes)
)
# eSpeak's own ASCII marks for a few phonemes without an IPA name, kept verbatim: ru 'u"' (u between soft
# consonants, "люди" -> ɭʲˈu"dʲɪ) and ru 'rɪ^' (soft r, "верьте" -> vʲˈerɪ^tʲi). "-" (id 1) also comes from
# eSpeak: it ties an unstressed word to the next one (fr "de" -> "də-").
_IPA_ESPEAK_MARKS = '"^'


def _ipa_symbols() -> tuple[str, ...]:
    # pad, special, punctuation, prosody, a-z, IPA letters, modifier letters, combining marks, eSpeak marks, eos.
    return (
        _PAD, _SPECIAL, *_PUNCTUATION, *_IPA_PROSODY, *string.ascii_lowercase, *_IPA_LETTERS,
        *_IPA_LETTERS_OTHER, *_IPA_MODIFIERS, *_IPA_COMBINING, *_IPA_ESPEAK_MARKS, _EOS,
    )  # fmt: skip


_TABLES: dict[str, SymbolTable] = {
    t.name: t
    for t in (
        SymbolTable("nvidia_english_v1", 1, _nvidia_symbols()),
        # Same ids as nvidia_english_v1 (so its embeddings transfer) plus one end-of-sentence symbol.
        SymbolTable("english_eos_v1", 1, (*_nvidia_symbols(), _EOS), eos=_EOS),
        # Russian graphemes with "+" stress and ё, for `russian_cleaners` (and optionally `russian_stress:PATH`).
        SymbolTable("russian_v1", 1, _russian_symbols(), eos=_EOS),
        # IPA from eSpeak NG for any of its languages, with the cleaner `espeak_ipa:VOICE` (e.g. "espeak_ipa:ru").
        SymbolTable("ipa_v1", 1, _ipa_symbols(), eos=_EOS),
        # Tacotron2-New HEAD's 60 symbols (transliterated Russian, '+' marks stress), with its cleaner
        # `t2n_transliteration_cleaners`; for converted T2N checkpoints.
        SymbolTable("t2n_translit_v1", 1, _t2n_symbols()),
        # The legacy (creotiv) layout's 41 symbols, same cleaner; for converted legacy checkpoints.
        SymbolTable("t2n_translit_legacy_v1", 1, _t2n_legacy_symbols()),
    )
}


def available_symbol_tables() -> tuple[str, ...]:
    return tuple(sorted(_TABLES))


def get_symbol_table(name: str) -> SymbolTable:
    """The registered table called `name`; ValueError listing the known names otherwise."""
    try:
        return _TABLES[name]
    except KeyError:
        raise ValueError(f"unknown symbol table {name!r}; known: {', '.join(available_symbol_tables())}") from None
