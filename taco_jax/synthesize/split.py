"""Long input -> pieces the model can speak: sentences, then clauses, then runs of words.

Tacotron's attention only learned texts as long as its training data (the largest bucket's text length); a
paragraph read in one go drifts, repeats or runs into max_decoder_steps. `split_text` cuts a text into
sentences (razdel: rule-based, knows Russian abbreviations such as "т.е." and "г." and leaves decimals like
"3.5" alone; it handles English too, with a guard below for English titles it does not know). A sentence that
`fits` rejects is cut at clause punctuation (, ; : and spaced dashes), and a clause that still does not fit is
cut between words. Pieces are substrings of the input, and consecutive clauses or words are packed into as
few pieces as fit, of lengths as even as that count allows (two halves rather than a full piece and a scrap).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from razdel import sentenize

SENTENCE = "sentence"  # the piece is a whole sentence
COMMA = "comma"  # one or more clauses of a sentence cut at , ; : or a spaced dash
WORDS = "words"  # a run of words of a clause that was too long on its own

SENTENCE_PAUSE_S = 0.25  # silence after a piece that ends a sentence
CLAUSE_PAUSE_S = 0.1  # silence after a piece cut inside a sentence (at a comma or between words)

Span = tuple[int, int]  # [start, end) character offsets into the text being split

# English titles that precede a name and so never end a sentence; razdel knows only Mr, Mrs, Ms and Dr and
# would cut "Prof. Smith" after "Prof.". "St." may also be "Street" at a sentence end: not cutting there only
# loses one pause, while cutting "St. James" puts a pause inside a name.
_TITLE_END_RE = re.compile(r"\b(?:drs|prof|rev|gen|maj|col|capt|lt|sgt|hon|gov|sen|rep|st|mt|ft)\.$", re.I)
# Abbreviations that precede a number ("Jan. 5", "Fig. 3", "vol. 2"): razdel cuts before the number.
_NUMBERED_END_RE = re.compile(
    r"\b(?:jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec|fig|figs|vol|pp|ch|sec|art|vs|approx|ca)\.$", re.I
)
# Clause ends: , ; : followed by whitespace (not "3,500" or "10:30"), or a dash between spaces (not the hyphen
# of "well-known"); the mark stays with the clause it ends.
_CLAUSE_END_RE = re.compile(r"[,;:](?=\s)|(?<=\s)(?:-{1,2}|[–—])(?=\s)")
_WORD_RE = re.compile(r"(?:\{[^{}]*\}|\S)+")  # a braced ARPAbet group is part of one word, never cut


@dataclass(frozen=True)
class Piece:
    """One piece of an input text, synthesized on its own.

    text: a substring of the input. split: how it was cut (SENTENCE, COMMA or WORDS). sentence: the index of
    its sentence in the input. pause_s: seconds of silence after it (0 after the input's last piece).
    """

    text: str
    split: str
    sentence: int
    pause_s: float


def sentence_spans(text: str) -> list[Span]:
    """Spans of the sentences of `text` (surrounding whitespace excluded); none for a blank text.

    A "sentence" without a letter or digit (a stray "...", an emoji) joins the sentence before it (or after
    it, when first): on its own it would be spoken as a burst of noise. So does one after an English title
    ("Prof. Smith") or after an abbreviation before a number ("Jan. 5"), which razdel takes for sentence ends.
    """
    spans: list[Span] = []
    for s in sentenize(text):
        if not s.text.strip():  # razdel gives one empty "sentence" for a blank text
            continue
        if spans and _joins_previous(text[spans[-1][0] : spans[-1][1]], s.text):
            spans[-1] = (spans[-1][0], s.stop)
        else:
            spans.append((s.start, s.stop))
    return spans


def _has_word(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def _joins_previous(previous: str, sentence: str) -> bool:
    if not _has_word(sentence) or not _has_word(previous) or _TITLE_END_RE.search(previous):
        return True
    return sentence[:1].isdigit() and bool(_NUMBERED_END_RE.search(previous))


def clause_spans(text: str, span: Span) -> list[Span]:
    """Spans of the clauses of text[span]: cut after , ; : and spaced dashes, whitespace excluded."""
    start, end = span
    cuts = [m.end() for m in _CLAUSE_END_RE.finditer(text, start, end)]
    bounds = zip([start, *cuts], [*cuts, end], strict=True)
    return [s for s in (_strip(text, a, b) for a, b in bounds) if s[0] < s[1]]


def word_spans(text: str, span: Span) -> list[Span]:
    """Spans of the words of text[span] (whitespace-separated; a braced ARPAbet group stays whole)."""
    return [m.span() for m in _WORD_RE.finditer(text, span[0], span[1])]


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def pack(text: str, units: list[Span], fits: Callable[[str], bool]) -> list[Span]:
    """Consecutive `units` joined into as few spans as `fits` allows, as even in characters as that count
    allows. A unit that does not fit even alone stays a span of its own (the caller cuts it further)."""

    def greedy(cap: int) -> list[Span]:
        out: list[Span] = []
        for unit in units:
            if out:
                joined = (out[-1][0], unit[1])
                if joined[1] - joined[0] <= cap and fits(text[joined[0] : joined[1]]):
                    out[-1] = joined
                    continue
            out.append(unit)
        return out

    if len(units) <= 1:
        return list(units)
    fewest = greedy(units[-1][1] - units[0][0])
    if len(fewest) == 1:
        return fewest
    # The smallest length cap that still gives the fewest pieces evens them out; greedy's count only grows
    # as the cap shrinks, so a binary search finds it.
    lo, hi, best = 1, units[-1][1] - units[0][0], fewest
    while lo < hi:
        mid = (lo + hi) // 2
        candidate = greedy(mid)
        if len(candidate) <= len(fewest):
            hi, best = mid, candidate
        else:
            lo = mid + 1
    return best


def _split_sentence(text: str, span: Span, fits: Callable[[str], bool]) -> list[tuple[Span, str]]:
    """(span, split) of the pieces of one sentence: itself when it fits, else its clauses packed, with each
    clause too long on its own cut into packed runs of words."""
    if fits(text[span[0] : span[1]]):
        return [(span, SENTENCE)]
    clauses = clause_spans(text, span)
    out: list[tuple[Span, str]] = []
    run: list[Span] = []  # consecutive clauses that fit on their own, packed together
    for clause in clauses:
        if len(clauses) > 1 and fits(text[clause[0] : clause[1]]):
            run.append(clause)
            continue
        out += [(s, COMMA) for s in pack(text, run, fits)]
        run = []
        out += [(s, WORDS) for s in pack(text, word_spans(text, clause), fits)]
    return out + [(s, COMMA) for s in pack(text, run, fits)]


def split_text(text: str, fits: Callable[[str], bool]) -> list[Piece]:
    """The pieces of `text`, in order: its sentences, each cut further while `fits(piece)` is false.

    `fits` says whether a piece is short enough for the model (e.g. its encoded length within the largest
    training bucket's text length). A single word that does not fit stays one piece. A blank text gives [].
    """
    pieces: list[Piece] = []
    for index, span in enumerate(sentence_spans(text)):
        parts = _split_sentence(text, span, fits)
        for i, ((start, end), split) in enumerate(parts):
            pause = SENTENCE_PAUSE_S if i == len(parts) - 1 else CLAUSE_PAUSE_S
            pieces.append(Piece(text[start:end], split, index, pause))
    if pieces:
        last = pieces[-1]
        pieces[-1] = Piece(last.text, last.split, last.sentence, 0.0)
    return pieces


def max_chars(limit: int) -> Callable[[str], bool]:
    """A `fits` for `split_text` that allows pieces of up to `limit` characters."""
    return lambda piece: len(piece) <= limit


class _SplitPiece(Protocol):
    split: str
    sentence: int


def describe(pieces: Sequence[_SplitPiece]) -> str:
    """How a text was split (its Pieces, or a Synthesis' pieces), for one line of output: "3 sentences, 1 split
    at commas, 1 split between words" (a sentence cut both ways counts in both)."""
    n_sentences = len({p.sentence for p in pieces})
    at_commas = len({p.sentence for p in pieces if p.split == COMMA})
    at_words = len({p.sentence for p in pieces if p.split == WORDS})
    parts = [f"{n_sentences} sentence" + ("" if n_sentences == 1 else "s")]
    if at_commas:
        parts.append(f"{at_commas} split at commas")
    if at_words:
        parts.append(f"{at_words} split between words")
    return ", ".join(parts)
