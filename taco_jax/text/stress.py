"""Russian stress dictionary in Tacotron2-New's format, and the `russian_stress:PATH` cleaner that applies it.

The file is UTF-8 (a BOM is allowed), one entry a line, the word and its stressed form split by "|", with "+"
before the stressed vowel; blank lines and lines starting with "#" are ignored:

    # word|stressed form
    замок|з+амок
    елка|+ёлка
    по-русски|по-р+усски

A form may restore ё ("елка|+ёлка": text written "елка" becomes "+ёлка"). A form with a single ё and no "+"
("елка|ёлка") is accepted too: ё is always stressed, so the ё alone marks the stress.

Lookup is by the lowercase word as written; a word that is not in the dictionary as written is looked up with
ё read as е, which is how "елка" finds "ёлка". A word that already has a "+" is left alone (the user's mark wins),
and a word written with ё only takes a form that keeps that ё. A hyphenated word is looked up whole first, then
part by part ("кто-нибудь" -> "кт+о-нибудь").

Use it after `russian_cleaners`: ``text.cleaners: [russian_cleaners, "russian_stress:path/to/dict.txt"]``.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from taco_jax.errors import UserError

_VOWELS = "аеёиоуыэюя"
_WORD_CHARS_RE = re.compile(r"[а-яё]+(?:-[а-яё]+)*")
# A word of the text: Cyrillic letters and "+" marks, hyphenated parts kept together.
_TEXT_WORD_RE = re.compile(r"[а-яёА-ЯЁ+]+(?:-[а-яёА-ЯЁ+]+)*")
_MAX_REPORTED = 20  # errors listed in one message; a broken file usually repeats one mistake


class StressDictionaryError(UserError, ValueError):
    """A stress dictionary that cannot be read or has a bad line; the message names `path:line`."""


def _fold(word: str) -> str:
    return word.replace("ё", "е")


@dataclass(frozen=True)
class StressDictionary:
    """Stressed forms by lowercase word, from `load_stress_dictionary`.

    >>> d = StressDictionary.from_entries({"замок": "з+амок", "елка": "+ёлка"})
    >>> d.lookup("Замок"), d.lookup("ёлка"), d.lookup("кот")
    ('з+амок', '+ёлка', None)
    """

    entries: Mapping[str, str]  # lowercase word as written -> lowercase stressed form
    path: str = "<memory>"

    @classmethod
    def from_entries(cls, entries: Mapping[str, str], path: str = "<memory>") -> StressDictionary:
        """A dictionary from already valid {word: form} pairs (tests, tools); files go through the loader."""
        return cls({w.lower(): f.lower() for w, f in entries.items()}, path)

    @functools.cached_property
    def _by_folded(self) -> dict[str, tuple[str, ...]]:
        # ё read as е -> every distinct form of the words that fold to it (several only for a true е/ё pair).
        out: dict[str, set[str]] = {}
        for word, form in self.entries.items():
            out.setdefault(_fold(word), set()).add(form)
        return {k: tuple(sorted(v)) for k, v in out.items()}

    def __len__(self) -> int:
        return len(self.entries)

    def lookup(self, word: str) -> str | None:
        """The stressed form for `word` (any case), or None: as written first, then with ё read as е.

        A word written with ё only takes a form that has ё in the same places, so a dictionary that lists only
        "все|вс+е" never re-stresses "всё". When ё-folding finds two different forms, the word is ambiguous
        and left alone.
        """
        low = word.lower()
        form = self.entries.get(low)
        if form is None:
            forms = self._by_folded.get(_fold(low), ())
            form = forms[0] if len(forms) == 1 else None
        if form is None:
            return None
        letters = form.replace("+", "")
        if any(ch == "ё" and letters[i] != "ё" for i, ch in enumerate(low)):
            return None
        return form


def _apply_form(word: str, form: str) -> str:
    """`word` with the form's "+" inserted and ё restored where the form has it; the word's case is kept."""
    out: list[str] = []
    i = 0
    for ch in form:
        if ch == "+":
            out.append("+")
            continue
        w = word[i]
        if ch == "ё" and w in "еЕ":
            w = "ё" if w == "е" else "Ё"
        out.append(w)
        i += 1
    return "".join(out)


def _stress_token(token: str, dictionary: StressDictionary) -> str:
    if "+" not in token and "-" in token:
        form = dictionary.lookup(token)
        if form is not None:
            return _apply_form(token, form)
    parts = token.split("-")
    for k, part in enumerate(parts):
        if part and "+" not in part:  # the user's "+" wins
            form = dictionary.lookup(part)
            if form is not None:
                parts[k] = _apply_form(part, form)
    return "-".join(parts)


def apply_stress(text: str, dictionary: StressDictionary) -> str:
    """Insert the dictionary's stress marks (and ё) into every Cyrillic word of `text` that has no "+" yet.

    >>> d = StressDictionary.from_entries({"замок": "з+амок", "елка": "+ёлка", "кто": "кт+о"})
    >>> apply_stress("старый замок, елка и зам+ок; кто-то", d)
    'старый з+амок, +ёлка и зам+ок; кт+о-то'
    """
    return _TEXT_WORD_RE.sub(lambda m: _stress_token(m.group(0), dictionary), text)


# --- loading and validation ------------------------------------------------------------------------------------


def _check_entry(word: str, form: str) -> str | None:
    """What is wrong with one `word|form` pair (both lowercase), or None."""
    if not word or not form:
        return "empty word or stressed form"
    if "+" in word:
        return f"the word {word!r} has a '+'; the stress belongs in the form after '|'"
    if not _WORD_CHARS_RE.fullmatch(word):
        return f"the word {word!r} has characters other than Russian letters and inner hyphens"
    marks = form.count("+")
    if marks > 1:
        return f"the stressed form {form!r} has {marks} '+' marks; one word takes exactly one"
    if marks == 0 and form.count("ё") != 1:
        return f"the stressed form {form!r} has no '+' (write it before the stressed vowel, as in 'з+амок')"
    if marks == 1:
        after = form[form.index("+") + 1 : form.index("+") + 2]
        if after == "" or after not in _VOWELS:
            return f"the '+' in {form!r} is not directly before a vowel ({_VOWELS})"
    letters = form.replace("+", "")
    if _fold(letters) != _fold(word):
        return f"the stressed form {form!r} spells a different word than {word!r}"
    if any(ch == "ё" and letters[i] != "ё" for i, ch in enumerate(word)):
        return f"the stressed form {form!r} drops the ё of {word!r}"
    return None


def _canonical(form: str) -> str:
    # "ёлка" and "+ёлка" say the same thing; only a different stress is a conflict.
    return form if "+" in form else form.replace("ё", "+ё")


def _read_lines(path: Path) -> list[str]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise StressDictionaryError(f"{path}: cannot read the stress dictionary: {e.strerror or e}") from None
    try:
        return data.decode("utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise StressDictionaryError(f"{path}:{line}: not UTF-8 ({e.reason}); save the dictionary as UTF-8") from None


def load_stress_dictionary(path: str | os.PathLike[str]) -> StressDictionary:
    """Read and validate a `word|w+ord` file; StressDictionaryError listing every bad line as `path:line`.

    Checked: each line has one "|"; the form has exactly one "+", directly before a vowel (or, without "+", a
    single ё); the form's letters are the word's (ё read as е); a word is not given two different forms.
    """
    path = Path(path)
    problems: list[str] = []
    entries: dict[str, str] = {}
    first_seen: dict[str, tuple[int, str]] = {}
    for number, raw in enumerate(_read_lines(path), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.count("|") != 1:
            what = "no '|'" if "|" not in line else "more than one '|'"
            problems.append(f"{path}:{number}: {what} in {line!r}; expected 'word|stressed form', as in 'замок|з+амок'")
            continue
        word, form = (part.strip().lower() for part in line.split("|"))
        problem = _check_entry(word, form)
        if problem:
            problems.append(f"{path}:{number}: {problem}: {line!r}")
            continue
        if word in entries and _canonical(entries[word]) != _canonical(form):
            earlier, earlier_line = first_seen[word]
            problems.append(
                f"{path}:{number}: conflicting stress for {word!r}: {line!r} here, {earlier_line!r} at {path}:{earlier}"
            )
            continue
        entries[word] = form
        first_seen.setdefault(word, (number, line))
    if problems:
        more = len(problems) - _MAX_REPORTED
        listing = "\n  ".join(problems[:_MAX_REPORTED]) + (f"\n  ... and {more} more" if more > 0 else "")
        raise StressDictionaryError(f"{path}: {len(problems)} bad line(s) in the stress dictionary:\n  {listing}")
    return StressDictionary(entries, str(path))


def stress_dictionary_fingerprint(path: str | os.PathLike[str]) -> str:
    """First 16 hex digits of the sha256 of the file's bytes, to record which dictionary a model was trained with."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError as e:
        raise StressDictionaryError(f"{path}: cannot read the stress dictionary: {e.strerror or e}") from None


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int, size: int) -> StressDictionary:
    # Keyed by modification time and size too, so an edited file is read again rather than served stale.
    return load_stress_dictionary(path)


def russian_stress_cleaner(path: str) -> Callable[[str], str]:
    """The `russian_stress:PATH` cleaner: loads and validates the dictionary now, applies it to each text.

    A relative PATH is taken from the current directory. StressDictionaryError (a ValueError) for a missing or
    bad file, so a config naming one fails before any text is cleaned.
    """
    resolved = Path(path).expanduser().absolute()
    try:
        st = resolved.stat()
    except OSError as e:
        raise StressDictionaryError(f"{resolved}: cannot read the stress dictionary: {e.strerror or e}") from None
    dictionary = _load_cached(str(resolved), st.st_mtime_ns, st.st_size)

    def russian_stress(text: str) -> str:
        return apply_stress(text, dictionary)

    russian_stress.__doc__ = f"Stress marks from {resolved} ({len(dictionary)} words)."
    return russian_stress


__all__ = [
    "StressDictionary",
    "StressDictionaryError",
    "apply_stress",
    "load_stress_dictionary",
    "russian_stress_cleaner",
    "stress_dictionary_fingerprint",
]
