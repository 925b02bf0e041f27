"""The demo sentence generator: a template grammar over the CMUdict vocabulary (see `vocabulary`).

Sentences have subject-verb agreement, tenses, questions, exclamations, possessives and numbers written with
digits (for the text cleaner to expand); the same seed always gives the same sentences.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from taco_jax.demo.vocabulary import cmudict_vocabulary

__all__ = ["MAX_WORDS", "MIN_WORDS", "generate_sentences"]

# Word-count range handed to the generator; sentences whose audio falls outside
# [min_seconds, max_seconds] are rejected afterwards, so this only shapes the length distribution.
MIN_WORDS = 3
MAX_WORDS = 14

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
        vocab = cmudict_vocabulary()
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
    rng = np.random.default_rng(seed)
    maker = _SentenceMaker(rng)
    too_small = f"max_words={max_words} is too small for the sentence templates (try >= 5)"
    return distinct_sentences(n, rng, lambda target: maker.sentence(target, max_words), min_words, max_words, too_small)


def distinct_sentences(
    n: int,
    rng: np.random.Generator,
    draw: Callable[[int], str | None],
    min_words: int,
    max_words: int,
    too_small: str,
) -> list[str]:
    """The first `n` distinct sentences `draw(target_words)` makes, each target drawn from `rng` in
    `min_words..max_words`. A draw that gives None or a sentence outside that word range is redrawn (up to 1000
    times, then ValueError(`too_small`)); a repeated sentence is skipped. Both languages' generators share this
    loop, so a seed gives the same corpus however a generator's templates change elsewhere."""
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    out: list[str] = []
    seen: set[str] = set()
    while len(out) < n:
        target = int(rng.integers(min_words, max_words + 1))
        for _ in range(1000):
            s = draw(target)
            if s is not None and min_words <= len(s.split()) <= max_words:
                break
        else:
            raise ValueError(too_small)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out
