"""Text front end: cleaners, versioned symbol tables and text <-> id-sequence conversion.

Text may embed ARPAbet in curly braces, as in NVIDIA/tacotron2: "Turn left on {HH AW1 S S T AH0 N} Street."
The braced part bypasses the cleaners and is encoded as '@'-prefixed symbols.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

import numpy as np

from taco_jax.text.cleaners import CLEANERS, clean_text
from taco_jax.text.numbers import normalize_numbers
from taco_jax.text.symbols import (
    ARPABET,
    ARPABET_PREFIX,
    SymbolTable,
    available_symbol_tables,
    get_symbol_table,
)

_BRACES_RE = re.compile(r"\{([^{}]*)\}")


def _clean_segment(segment: str, cleaners: Sequence[str], first: bool, last: bool) -> str:
    """Clean a plain-text piece between ARPAbet groups, keeping the word break at each inner edge.

    The cleaners strip whitespace, which would glue "on {HH AW1 ...}" into "on@HH"; a space that touched a
    brace in the input is put back.
    """
    cleaned = clean_text(segment, cleaners)
    if not cleaned:
        return " " if segment and not (first or last) else ""
    lead = " " if not first and segment[:1].isspace() else ""
    trail = " " if not last and segment[-1:].isspace() else ""
    return lead + cleaned + trail


def text_to_sequence(
    text: str, table: SymbolTable, cleaners: Sequence[str], add_eos: bool = False
) -> tuple[np.ndarray, Counter[str]]:
    """Encode text as symbol ids.

    Returns (ids, dropped): int32 ids of shape [n_symbols], and a Counter of the characters (or
    '@'-prefixed ARPAbet tokens) that were dropped because the table has no symbol for them. The pad and
    eos symbols are control symbols, so when they occur in the text they are dropped and counted as well.
    `add_eos` appends the table's eos id; ValueError if the table has none.
    """
    if add_eos and table.eos_id is None:
        raise ValueError(f"add_eos=True but symbol table {table.name!r} has no eos symbol (try 'english_eos_v1')")
    lookup = table.symbol_to_id
    control = {table.pad, table.eos}
    ids: list[int] = []
    dropped: Counter[str] = Counter()

    def emit(symbol: str) -> None:
        if symbol in lookup and symbol not in control:
            ids.append(lookup[symbol])
        else:
            dropped[symbol] += 1

    # re.split with one group alternates plain text (even indices) and brace contents (odd indices).
    parts = _BRACES_RE.split(text)
    last_plain = len(parts) - 1
    for i, part in enumerate(parts):
        if i % 2 == 0:
            for ch in _clean_segment(part, cleaners, first=i == 0, last=i == last_plain):
                emit(ch)
        else:
            for token in part.split():
                emit(ARPABET_PREFIX + token.upper())
    if add_eos:
        ids.append(table.eos_id)  # type: ignore[arg-type]  # checked above
    return np.asarray(ids, dtype=np.int32), dropped


@functools.lru_cache(maxsize=4096)
def _cleans_to_nothing(ch: str, cleaners: tuple[str, ...]) -> bool:
    return not clean_text(ch, cleaners).strip()


def cleaned_away(text: str, cleaners: Sequence[str]) -> Counter[str]:
    """Letters, digits and symbols of `text` (outside braced ARPAbet) that the cleaners delete outright, with their
    counts: e.g. emoji under `convert_to_ascii`. `text_to_sequence` never sees them, so its `dropped` Counter
    misses them; the two together are what a text loses. Whitespace and punctuation are never counted: cleaners
    normalise them (quotes removed, a lone comma stripped when the character is cleaned on its own)."""
    cleaners = (cleaners,) if isinstance(cleaners, str) else tuple(cleaners)
    plain = _BRACES_RE.sub(" ", text)
    gone = {ch for ch in set(plain) if unicodedata.category(ch)[0] in "LNS" and _cleans_to_nothing(ch, cleaners)}
    return Counter(ch for ch in plain if ch in gone)


def sequence_to_text(ids: Sequence[int] | np.ndarray, table: SymbolTable) -> str:
    """Decode ids back to text; pad ids are skipped and runs of ARPAbet symbols are put back in braces."""
    out: list[str] = []
    arpabet: list[str] = []
    for i in np.asarray(ids, dtype=np.int64).reshape(-1).tolist():
        if not 0 <= i < len(table):
            raise ValueError(f"id {i} is outside symbol table {table.name!r} (size {len(table)})")
        if i == table.pad_id:
            continue
        symbol = table.symbols[i]
        if symbol.startswith(ARPABET_PREFIX) and len(symbol) > 1:
            arpabet.append(symbol[len(ARPABET_PREFIX) :])
            continue
        if arpabet:
            out.append("{" + " ".join(arpabet) + "}")
            arpabet = []
        out.append(symbol)
    if arpabet:
        out.append("{" + " ".join(arpabet) + "}")
    return "".join(out)


__all__ = [
    "ARPABET",
    "CLEANERS",
    "SymbolTable",
    "available_symbol_tables",
    "clean_text",
    "cleaned_away",
    "get_symbol_table",
    "normalize_numbers",
    "sequence_to_text",
    "text_to_sequence",
]
