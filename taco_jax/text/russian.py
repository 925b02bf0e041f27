"""Russian grapheme front end: `russian_cleaners`, which writes text in the `russian_v1` symbol table's alphabet.

The output holds only lowercase Cyrillic (ё kept), "+" stress marks, "-" inside words, the punctuation
``!'(),.:;?`` and single spaces. Numbers, money, percent, dates, times and common abbreviations are spelled out
as words, with the counted noun agreeing with the number (pymorphy3) and the number agreeing with its noun or
preposition where that is simple to see ("в 5 домах" -> "в пяти домах", "до 100 руб." -> "до ста рублей").

    >>> russian_cleaners("В 1999 году цена выросла на 15% — до 12,50 руб.")  # doctest: +NORMALIZE_WHITESPACE
    'в тысяча девятьсот девяносто девятом году цена выросла на пятнадцать процентов,
     до двенадцати рублей пятидесяти копеек.'

Choices a user should know:
- a "+" the user wrote before a vowel is kept where it is; a "+" before anything else is read as "плюс";
  a combining acute accent after a vowel ("заме́к") becomes a "+" before it;
- a range "5-7" is read as two numbers, "пять семь" (a long dash with spaces, "5 — 7", is a pause instead);
  "1 000" and "1000" read "тысяча" (not "одна тысяча"); a plain space between digit groups joins them
  ("5 100" -> "пять тысяч сто");
- "г." after a number is always a year ("5 г." -> "пятый год"; grams are "5 г" without the period); "год"/"года"
  make a year only after four digits ("2 года" stays a count); the year's case follows its preposition
  ("в 2024 г." -> "в ... четвёртом году", "с 2024 г." -> "с ... четвёртого года");
- the period of an abbreviation that also ends the sentence (end of text or a capital next) is kept:
  "и т.д." at the end -> "и так далее.", "в 2024 г. Потом" -> "... году. потом";
- ordinals with a suffix ("5-й", "5-м") take the form that agrees with the next word where pymorphy3 can tell
  ("на 5-й улице" -> "на пятой улице"); "т.н." is always "так называемый" (not agreed);
- decimals are read in the nominative ("три целых пять десятых"), money decimals as the minor unit
  ("12,5 руб." -> "двенадцать рублей пятьдесят копеек");
- a dash between words becomes a pause ", "; a hyphen inside a word ("кто-то") stays;
- Latin words are transliterated by a spelling rule table (`LATIN_RULES`), not a pronunciation dictionary:
  "Google" -> "гугле", "Python" -> "питон";
- characters the table cannot hold (other alphabets, symbols such as "=" or "&") are left in place, so that
  `text_to_sequence` counts them as dropped instead of losing them silently.

pymorphy3 and num2words are imported on first use, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import NamedTuple

_VOWELS = "аеёиоуыэюя"
_LATIN_VOWELS = "aeiouy"
_CYR = "а-яё"  # inside a character class; patterns that use it are compiled with re.IGNORECASE

# num2words' case letters, used throughout: nominative, genitive, dative, accusative, instrumental, prepositional.
_PYMORPHY_CASE = {"n": "nomn", "g": "gent", "d": "datv", "a": "accs", "i": "ablt", "p": "loct"}
_CASE_FROM_PYMORPHY = {
    "nomn": "n", "voct": "n", "gent": "g", "gen1": "g", "gen2": "g", "datv": "d", "accs": "a", "acc2": "a",
    "ablt": "i", "loct": "p", "loc1": "p", "loc2": "p",
}  # fmt: skip
_GENDER_FROM_PYMORPHY = {"masc": "m", "femn": "f", "neut": "n"}

# The case a preposition puts a bare number into ("до 5" -> "до пяти"). "в"/"на"/"за"/"по" mostly take the
# accusative, which reads like the nominative for numbers, so they are left out.
_PREPOSITION_CASE = {
    **dict.fromkeys(
        "до от из изо у без для около после кроме вокруг более менее свыше больше меньше среди против вместо "
        "возле ради с со порядка".split(),
        "g",
    ),
    **dict.fromkeys("к ко согласно благодаря".split(), "d"),
    **dict.fromkeys("о об обо при".split(), "p"),
    **dict.fromkeys("перед передо над под между".split(), "i"),
}
# Before a year ("в 2024 г." -> "в две тысячи двадцать четвёртом году") "в" and "на" do decide the case.
_YEAR_PREPOSITION_CASE = {**_PREPOSITION_CASE, "в": "p", "во": "p", "за": "a", "на": "a", "через": "a", "про": "a"}

_MONTHS_GENITIVE = (
    "января", "февраля", "марта", "апреля", "мая", "июня",
    "июля", "августа", "сентября", "октября", "ноября", "декабря",
)  # fmt: skip
_ONE_FORMS = frozenset("один одна одно одного одной одному одну одним одном".split())
_BIG_UNITS = ("тысяч", "миллион", "миллиард", "триллион")


# --- morphology ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _morph():
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


class _Form(NamedTuple):
    """One reading of a word: case (num2words letter), number ("sing"/"plur"), gender ("m"/"f"/"n"/None)."""

    case: str
    number: str
    gender: str | None
    animate: bool


@functools.lru_cache(maxsize=8192)
def _forms(word: str) -> tuple[_Form, ...]:
    """The noun/adjective readings pymorphy3 gives `word`, most likely first ("книги" -> gent sing, nomn plur...)."""
    out = []
    for p in _morph().parse(word):
        tag = p.tag
        if tag.POS not in ("NOUN", "ADJF", "PRTF") or tag.case not in _CASE_FROM_PYMORPHY or tag.number is None:
            continue
        gender = _GENDER_FROM_PYMORPHY.get(tag.gender) if tag.gender else None
        out.append(_Form(_CASE_FROM_PYMORPHY[tag.case], tag.number, gender, tag.animacy == "anim"))
    return tuple(out)


def _is_one(n: int) -> bool:
    return n % 10 == 1 and n % 100 != 11


def _is_few(n: int) -> bool:
    return 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14


@functools.lru_cache(maxsize=1024)
def _agree(lemma: str, n: int, case: str = "n", fraction: bool = False) -> str:
    """`lemma` (a noun, optionally followed by fixed words: "градус цельсия") in the form that goes with `n`.

    >>> _agree("рубль", 21), _agree("рубль", 3), _agree("рубль", 5, "g"), _agree("процент", 3, fraction=True)
    ('рубль', 'рубля', 'рублей', 'процента')
    """
    head, _, tail = lemma.partition(" ")
    parses = [p for p in _morph().parse(head) if p.tag.POS == "NOUN" and p.normal_form == head] or _morph().parse(head)
    p = parses[0]
    if fraction:  # "три целых пять десятых процента": a fraction counts in the genitive singular
        form = p.inflect({"gent", "sing"})
    elif case == "n" or (case == "a" and not _is_one(n)):
        form = p.make_agree_with_number(n)
    else:
        form = p.inflect({_PYMORPHY_CASE[case], "sing" if _is_one(n) else "plur"})
    if form is None:
        return lemma
    word = form.word
    if form.tag.case == "gent" and form.tag.number == "plur":
        # Where the dictionary has a short counting form too ("пять килограмм"), use the full one ("килограммов").
        word = max((f.word for f in p.lexeme if f.tag.case == "gent" and f.tag.number == "plur"), key=len)
    return f"{word} {tail}" if tail else word


# --- number words ----------------------------------------------------------------------------------------------

# Feminine and neuter forms of the final "один"/"два" (num2words only genders the whole number, and wrongly for
# round thousands: "одной миллиона"); keyed by the masculine word in each case.
_FEMININE = {"один": "одна", "одного": "одной", "одному": "одной", "одним": "одной", "одном": "одной", "два": "две"}
_NEUTER = {"один": "одно"}
_MAX_SPOKEN = 10**18  # longer numbers are codes or noise, read digit by digit (num2words also stops near 10**45)


def cardinal(n: int, case: str = "n", gender: str = "m", animate: bool = False) -> str:
    """`n` in words, in a case ("n", "g", "d", "a", "i", "p") and gender ("m", "f", "n") for its last word.

    >>> cardinal(21, gender="f"), cardinal(5000, "g"), cardinal(1000), cardinal(1, "a", "f")
    ('двадцать одна', 'пяти тысяч', 'тысяча', 'одну')
    """
    from num2words import num2words

    if n < 0:
        return "минус " + cardinal(-n, case, gender, animate)
    if n >= _MAX_SPOKEN:
        return digits(str(n))
    words = num2words(n, lang="ru", case=case, gender="m", animate=animate).split()
    last = words[-1]
    if n % 1000 and gender == "f":
        words[-1] = "одну" if case == "a" and last in ("один", "одного") else _FEMININE.get(last, last)
        if case == "a" and last == "два":
            words[-1] = "две"
    elif n % 1000 and gender == "n" and case in ("n", "a"):
        words[-1] = _NEUTER.get(last, last)
    # "тысяча рублей", "миллион": the leading "один" of a round big number is not said.
    if len(words) > 1 and words[0] in _ONE_FORMS and words[1].startswith(_BIG_UNITS):
        words = words[1:]
    return " ".join(words)


def ordinal(n: int, case: str = "n", gender: str = "m", animate: bool = False) -> str:
    """Ordinal `n` in words; gender "m", "f", "n" or "p" (plural).

    >>> ordinal(21, gender="f"), ordinal(1999, "p"), ordinal(2, "g"), ordinal(3, gender="n")
    ('двадцать первая', 'тысяча девятьсот девяносто девятом', 'второго', 'третье')
    """
    from num2words import num2words

    if n >= _MAX_SPOKEN:
        return digits(str(n))
    plural = gender == "p"
    return num2words(
        n, lang="ru", to="ordinal", case=case, gender="m" if plural else gender, plural=plural, animate=animate
    )


_DENOMINATORS = ("десят", "сот", "тысячн", "десятитысячн", "стотысячн", "миллионн")


def decimal(whole: str, frac: str) -> str:
    """A decimal fraction as it is read: whole part, "целых", numerator, denominator.

    >>> decimal("3", "5"), decimal("1", "25"), decimal("0", "001")
    ('три целых пять десятых', 'одна целая двадцать пять сотых', 'ноль целых одна тысячная')
    """
    w = int(whole)
    head = f"{cardinal(w, gender='f')} {'целая' if _is_one(w) else 'целых'}"
    if len(frac) > len(_DENOMINATORS):  # too fine for a fraction name: read the digits after "запятая"
        return f"{cardinal(w)} запятая {digits(frac)}"
    num = int(frac)
    denominator = _DENOMINATORS[len(frac) - 1] + ("ая" if _is_one(num) else "ых")
    return f"{head} {cardinal(num, gender='f')} {denominator}"


def digits(s: str) -> str:
    """Digit by digit, for codes and numbers with leading zeros: "007" -> "ноль ноль семь"."""
    return " ".join(cardinal(int(c)) for c in s)


def _integer(s: str, case: str = "n", gender: str = "m", animate: bool = False) -> str:
    if len(s) > 1 and s.startswith("0"):
        return digits(s)
    return cardinal(int(s), case, gender, animate)


def _compound_stem(n: int) -> str:
    """The first part of "5-летний" -> "пятилетний", "2-комнатная" -> "двухкомнатная", "100-летие" -> "столетие"."""
    fixes = {"ста": "сто", "девяноста": "девяносто", "одного": "одно", "тысячи": "тысяче"}
    return "".join(fixes.get(w, w) for w in cardinal(n, "g").split())


# --- context ---------------------------------------------------------------------------------------------------

_PREV_WORD_RE = re.compile(rf"([{_CYR}]+)\s*$", re.IGNORECASE)
_NEXT_CHAR_RE = re.compile(r"\s*(\S?)")
_NEXT_WORD_RE = re.compile(rf"\s*([{_CYR}+]+)", re.IGNORECASE)


def _previous_word(text: str, pos: int) -> str:
    m = _PREV_WORD_RE.search(text, max(0, pos - 40), pos)
    return m.group(1).lower() if m else ""


def _next_word(text: str, pos: int) -> str:
    m = _NEXT_WORD_RE.match(text, pos)
    return m.group(1).lower().replace("+", "") if m else ""


def _ends_sentence(text: str, pos: int) -> bool:
    """Whether an abbreviation's period that ends at `pos` also ends the sentence (end of text or a capital)."""
    nxt = _NEXT_CHAR_RE.match(text, pos).group(1)  # a regex, not text[pos:], so long texts stay linear
    return not nxt or nxt.isupper()


def _cardinal_agreement(n: int, noun: str, prep_case: str) -> tuple[str, str, bool]:
    """(case, gender, animate) of a bare number from the word after it and the preposition before it.

    "1 книга" -> feminine; "в 5 домах" -> prepositional; "до 5 лет" -> genitive; "5 домов" -> nominative.
    """
    one, few = _is_one(n), _is_few(n)
    for f in _forms(noun) if noun else ():
        singular = f.number == "sing"
        if f.case in ("d", "i", "p") and singular == one:
            return f.case, f.gender or "m", f.animate
        if one and singular:
            return ("n" if f.case == "a" and f.gender != "f" and not f.animate else f.case), f.gender or "m", f.animate
        if f.case == "g" and not one and (singular == few):
            return ("g" if prep_case == "g" else "n"), f.gender or "m", False
        if f.case == "g" and not one and prep_case == "g":
            return "g", f.gender or "m", False
    return prep_case, "m", False


# --- ordinals written with a suffix ("5-й", "2-го", "в 1990-х") ----------------------------------------------

_FEM_OBLIQUE = (("g", "f"), ("d", "f"), ("i", "f"), ("p", "f"))
_ORDINAL_SUFFIXES: dict[str, tuple[tuple[str, str], ...]] = {
    **dict.fromkeys(("й", "ой"), (("n", "m"), *_FEM_OBLIQUE)),
    **dict.fromkeys(("ый", "ий"), (("n", "m"),)),
    **dict.fromkeys(("я", "ая", "ья"), (("n", "f"),)),
    **dict.fromkeys(("ю", "ую", "ью"), (("a", "f"),)),
    **dict.fromkeys(("е", "ое", "ье"), (("n", "n"), ("n", "p"))),
    **dict.fromkeys(("ые", "ьи"), (("n", "p"),)),
    **dict.fromkeys(("го", "ого", "его", "ьего"), (("g", "m"), ("g", "n"))),
    **dict.fromkeys(("му", "ому", "ему", "ьему"), (("d", "m"), ("d", "n"))),
    "м": (("p", "m"), ("i", "m"), ("p", "n"), ("i", "n"), ("d", "p")),
    **dict.fromkeys(("ом", "ем", "ьем"), (("p", "m"), ("p", "n"))),
    **dict.fromkeys(("ым", "им", "ьим"), (("i", "m"), ("i", "n"), ("d", "p"))),
    **dict.fromkeys(("х", "ых", "их", "ьих"), (("g", "p"), ("p", "p"))),
    **dict.fromkeys(("ми", "ыми", "ими", "ьими"), (("i", "p"),)),
    **dict.fromkeys(("ей", "ьей"), _FEM_OBLIQUE),
}


def _fits(case: str, gender: str, f: _Form) -> bool:
    same_case = f.case == case or (case == "n" and f.case == "a" and not f.animate)
    if gender == "p":
        return same_case and f.number == "plur"
    return same_case and f.number == "sing" and f.gender in (None, gender)


def _ordinal_form(suffix: str, noun: str) -> tuple[str, str]:
    """(case, gender) for an ordinal written with `suffix`, the reading that agrees with the next word if any."""
    candidates = _ORDINAL_SUFFIXES[suffix]
    forms = _forms(noun) if noun else ()
    for case, gender in candidates:
        if any(_fits(case, gender, f) for f in forms):
            return case, gender
    return candidates[0]


def _suffixed_number(n: int, suffix: str, text: str, end: int) -> str | None:
    """Words for "5-й", "2-х", "5-ти", "5-летний"; None when the suffix is none of those."""
    if suffix in ("ух", "ех", "ёх", "ти") or (suffix == "х" and _is_few(n)) or (suffix == "ми" and n % 10 in (7, 8)):
        return cardinal(n, "g")  # "2-х" -> "двух", "5-ти" -> "пяти", "7-ми" -> "семи"
    if suffix in _ORDINAL_SUFFIXES:
        case, gender = _ordinal_form(suffix, _next_word(text, end))
        return ordinal(n, case, gender)
    if len(suffix) >= 3:
        return _compound_stem(n) + suffix
    return None


# --- units, money, years ---------------------------------------------------------------------------------------


class _Unit(NamedTuple):
    lemma: str  # the noun (and any fixed words after it) that is counted
    gender: str  # of the noun, which the number agrees with ("одна копейка")
    minor: tuple[str, str] | None = None  # money: the minor unit's (lemma, gender), for "12,50 руб."


_RUB = _Unit("рубль", "m", ("копейка", "f"))
_USD = _Unit("доллар", "m", ("цент", "m"))
_EUR = _Unit("евро", "m", ("цент", "m"))
_GBP = _Unit("фунт", "m", ("пенс", "m"))
_CURRENCY_SYMBOLS = {"$": _USD, "€": _EUR, "£": _GBP, "₽": _RUB}
_NOT_LETTER = r"(?![а-яёa-z])"

# What may follow a number as its unit, tried in order (longest first where one is a prefix of another). A unit
# written with a period ("руб.") takes the period with it; metric units never do ("5 см." ends a sentence).
_UNITS: tuple[tuple[str, _Unit], ...] = (
    (rf"руб(?:\.|{_NOT_LETTER})|р\.|₽", _RUB),
    (rf"долл(?:\.|{_NOT_LETTER})|\$", _USD),
    (rf"евро{_NOT_LETTER}|€", _EUR),
    (r"£", _GBP),
    (rf"коп(?:\.|{_NOT_LETTER})", _Unit("копейка", "f")),
    (r"%", _Unit("процент", "m")),
    (r"‰", _Unit("промилле", "n")),
    (rf"°\s?[cс]{_NOT_LETTER}", _Unit("градус цельсия", "m")),
    (r"°", _Unit("градус", "m")),
    (r"км/ч", _Unit("километр в час", "m")),
    (rf"кг{_NOT_LETTER}", _Unit("килограмм", "m")),
    (rf"км{_NOT_LETTER}", _Unit("километр", "m")),
    (rf"см{_NOT_LETTER}", _Unit("сантиметр", "m")),
    (rf"мм{_NOT_LETTER}", _Unit("миллиметр", "m")),
    (rf"мл{_NOT_LETTER}", _Unit("миллилитр", "m")),
    (rf"мин{_NOT_LETTER}", _Unit("минута", "f")),
    (rf"сек{_NOT_LETTER}", _Unit("секунда", "f")),
    (rf"шт(?:\.|{_NOT_LETTER})", _Unit("штука", "f")),
    (rf"м{_NOT_LETTER}", _Unit("метр", "m")),
    (rf"л{_NOT_LETTER}", _Unit("литр", "m")),
    (rf"г{_NOT_LETTER}(?!\.)", _Unit("грамм", "m")),
    (rf"ч{_NOT_LETTER}", _Unit("час", "m")),
)
_UNIT_RE = re.compile(r"\s?(?:" + "|".join(f"(?P<u{i}>{p})" for i, (p, _) in enumerate(_UNITS)) + ")", re.IGNORECASE)
# After a decimal the written-out currency is re-spelled too: "12,50 рублей" -> "двенадцать рублей пятьдесят копеек".
_CURRENCY_WORDS = ((r"рубл[а-яё]*", _RUB), (r"доллар[а-яё]*", _USD), (r"копе[а-яё]*", _Unit("копейка", "f")))
_CURRENCY_WORD_RE = re.compile(
    r"\s?(?:" + "|".join(f"(?P<u{i}>{p})" for i, (p, _) in enumerate(_CURRENCY_WORDS)) + ")", re.IGNORECASE
)
_MULTIPLIERS = {"тыс": _Unit("тысяча", "f"), "млн": _Unit("миллион", "m"), "млрд": _Unit("миллиард", "m")}
_MULTIPLIERS["трлн"] = _Unit("триллион", "m")
_MULT_RE = re.compile(rf"\s?(тыс|млн|млрд|трлн)(\.?){_NOT_LETTER}", re.IGNORECASE)

_YEAR_MARK_RE = re.compile(rf"\s?(гг|г)(\.?){_NOT_LETTER}", re.IGNORECASE)
_YEAR_RANGE_RE = re.compile(r"\s+\d{3,4}\s?гг\.", re.IGNORECASE)
_YEAR_WORD_RE = re.compile(rf"\s(год|года|году|годом|годе){_NOT_LETTER}", re.IGNORECASE)
_YEAR_NOUN = {
    False: {"n": "год", "g": "года", "d": "году", "a": "год", "i": "годом", "p": "году"},
    True: {"n": "годы", "g": "годов", "d": "годам", "a": "годы", "i": "годами", "p": "годах"},
}
_PREV_WORD_BEFORE_RANGE_RE = re.compile(rf"([{_CYR}]+)\s*\d+\s+$", re.IGNORECASE)


def _year_preposition(text: str, start: int) -> str:
    """The preposition before a year, looking past the first year of a range ("в 1941 1945 гг." -> "в")."""
    word = _previous_word(text, start)
    if not word:
        m = _PREV_WORD_BEFORE_RANGE_RE.search(text, max(0, start - 60), start)
        word = m.group(1).lower() if m else ""
    return word


def _year(text: str, start: int, end: int, n: int, written: str) -> tuple[str, int] | None:
    """A number read as a year: before "г."/"гг." (always), "году"/"годом"/"годе", or "год"/"года" (4 digits).

    Returns (words, end of what was read) or None when the number is not a year.
    """
    prep = _year_preposition(text, start)
    case = _YEAR_PREPOSITION_CASE.get(prep, "n")
    mark = _YEAR_MARK_RE.match(text, end)
    if mark and (mark.group(2) or mark.group(1).lower() == "гг" or 1000 <= n <= 2100):
        words = f"{ordinal(n, case)} {_YEAR_NOUN[mark.group(1).lower() == 'гг'][case]}"
        if mark.group(2) and _ends_sentence(text, mark.end()):
            words += "."
        return words, mark.end()
    if _YEAR_RANGE_RE.match(text, end):
        return ordinal(n, case), end
    word = _YEAR_WORD_RE.match(text, end)
    if word is None:
        return None
    noun = word.group(1).lower()
    if noun in ("год", "года") and len(written) != 4:
        return None  # "2 года", "21 год": a count of years, not a year
    by_noun = {"год": "n", "года": "g", "годом": "i", "годе": "p"}
    return ordinal(n, by_noun.get(noun) or ("p" if prep in ("в", "во", "о", "об", "при") else "d")), end


def _suffixed_ordinal_year(text: str, start: int, end: int, n: int, suffix: str) -> tuple[str, int] | None:
    """ "в 1999-м г." -> "в тысяча девятьсот девяносто девятом году", "в 1990-х гг." -> "... девяностых годах"."""
    mark = _YEAR_MARK_RE.match(text, end)
    if suffix not in _ORDINAL_SUFFIXES or mark is None or not mark.group(2):
        return None
    candidates = _ORDINAL_SUFFIXES[suffix]
    case = _YEAR_PREPOSITION_CASE.get(_year_preposition(text, start), "n")
    case, gender = next((c for c in candidates if c[0] == case), candidates[0])
    plural = gender == "p" or mark.group(1).lower() == "гг"
    words = f"{ordinal(n, case, gender)} {_YEAR_NOUN[plural][case]}"
    if _ends_sentence(text, mark.end()):
        words += "."
    return words, mark.end()


def _unit_at(pattern: re.Pattern[str], table: tuple[tuple[str, _Unit], ...], text: str, pos: int):
    m = pattern.match(text, pos)
    if m is None:
        return None, pos, ""
    unit = next(u for i, (_, u) in enumerate(table) if m.group(f"u{i}") is not None)
    return unit, m.end(), m.group(0)


def _quantity(text: str, m: re.Match[str], prep_case: str) -> tuple[str, int] | None:
    """A number with a multiplier and/or unit: "5 тыс. руб.", "$3.50", "15%", "3,5 кг"; None if it has neither."""
    whole, frac, end = m.group("int"), m.group("frac"), m.end()
    mult_m = _MULT_RE.match(text, end)
    mult = _MULTIPLIERS[mult_m.group(1).lower()] if mult_m else None
    taken = mult_m.group(0) if mult_m else ""
    end = mult_m.end() if mult_m else end
    unit = _CURRENCY_SYMBOLS[m.group("cur").strip()] if m.group("cur") else None
    if unit is None:
        unit, end, token = _unit_at(_UNIT_RE, _UNITS, text, end)
        if unit is None and frac:
            unit, end, token = _unit_at(_CURRENCY_WORD_RE, _CURRENCY_WORDS, text, end)
        taken = token or taken
    if mult is None and unit is None:
        return None
    n, case = int(whole), prep_case
    if frac and unit and unit.minor and not mult:
        cents = int((frac + "00")[:2])  # two digits are the minor unit: "12,5 руб." is fifty kopecks
        parts = []
        if n or not cents:
            parts.append(f"{_integer(whole, case, unit.gender)} {_agree(unit.lemma, n, case)}")
        if cents:
            minor, gender = unit.minor
            parts.append(f"{cardinal(cents, case, gender)} {_agree(minor, cents, case)}")
        words = " ".join(parts)
    elif frac:
        words = decimal(whole, frac)
        if mult:
            words += " " + _agree(mult.lemma, 0, fraction=True)
        if unit:
            words += " " + (_agree(unit.lemma, 5) if mult else _agree(unit.lemma, 0, fraction=True))
    else:
        counted = mult or unit
        words = f"{_integer(whole, case, counted.gender)} {_agree(counted.lemma, n, case)}"
        if mult and unit:
            words += " " + _agree(unit.lemma, 5)  # "пять тысяч рублей": after a multiplier, genitive plural
    if taken.endswith(".") and _ends_sentence(text, end):
        words += "."
    return words, end


# --- numbers: the pass over the text ---------------------------------------------------------------------------

_SPACES = " \u00a0\u2009\u202f"
# "1 000 000" (plain, no-break or thin spaces) and "1.000.000" are one number; a first group of 4+ digits is not.
_THOUSANDS_RE = re.compile(
    rf"(?<![\d.,])\d{{1,3}}(?:[{_SPACES}]\d{{3}})+(?!\d)|(?<![\d.,])\d{{1,3}}(?:\.\d{{3}}){{2,}}(?![\d.,])"
)
_DATE_RE = re.compile(r"(?<![\d.,])(\d{1,2})\.(\d{1,2})\.(\d{4})(?![\d])(\s?г\.)?", re.IGNORECASE)
_TIME_RE = re.compile(r"(?<![\d:.,])([01]?\d|2[0-3]|24(?=:00)):([0-5]\d)(?![\d:])")
# A range "5-7", "1941–1945", "5 - 7": the dash becomes a space and each side is read on its own ("пять семь").
# A long dash with spaces around it is a pause between phrases ("д. 5 — 2-й этаж"), not a range.
_RANGE_RE = re.compile(r"(?<=\d)(?:[-–—‒−]|\s[-−]\s)(?=\d)")
_NUMBER_RE = re.compile(
    r"(?P<cur>[$€£₽]\s?)?(?P<sign>(?<![\w.,])[-−]|−)?(?P<int>\d+)(?:[.,](?P<frac>\d+))?"
    rf"(?:-(?P<suffix>[{_CYR}]+))?",
    re.IGNORECASE,
)


def _say_date(m: re.Match[str]) -> str:
    """ "12.05.2024" -> "двенадцатое мая две тысячи двадцать четвёртого года" (the day in its preposition's case)."""
    day, month, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
    if not (1 <= day <= 31 and 1 <= month <= 12):
        return m.group(0)
    case = _PREPOSITION_CASE.get(_previous_word(m.string, m.start()), "n")
    words = f"{ordinal(day, case, 'n')} {_MONTHS_GENITIVE[month - 1]} {ordinal(year, 'g')} года"
    if m.group(4) and _ends_sentence(m.string, m.end()):
        words += "."
    return words


def _say_time(m: re.Match[str]) -> str:
    """ "10:30" -> "десять тридцать", "9:05" -> "девять ноль пять", "10:00" -> "десять ноль ноль"."""
    minutes = m.group(2)
    spoken = digits(minutes) if minutes.startswith("0") else cardinal(int(minutes))
    return f"{cardinal(int(m.group(1)))} {spoken}"


def _say_number(text: str, m: re.Match[str]) -> tuple[str, int]:
    """Words for the number `m` found in `text`, and where the text they replace ends."""
    written, frac, suffix, end = m.group("int"), m.group("frac"), m.group("suffix"), m.end()
    minus = "минус " if m.group("sign") else ""
    n = int(written)
    prep_case = _PREPOSITION_CASE.get(_previous_word(text, m.start()), "n")
    if suffix and not frac and not m.group("cur"):
        year = _suffixed_ordinal_year(text, m.start(), end, n, suffix.lower())
        if year is not None:
            return minus + year[0], year[1]
        said = _suffixed_number(n, suffix.lower(), text, end)
        if said is not None:
            return minus + said, end
        end = m.end("int")  # an unknown short suffix ("5-ка"): the hyphen and the word after it are left as written
    if not frac and not m.group("cur"):
        year = _year(text, m.start("int"), end, n, written)
        if year is not None:
            return minus + year[0], year[1]
        if 1 <= n <= 31 and _next_word(text, end) in _MONTHS_GENITIVE:  # "1 мая" -> "первое мая"
            return ordinal(n, prep_case, "n"), end
    quantity = _quantity(text, m, prep_case) if not suffix else None
    if quantity is not None:
        return minus + quantity[0], quantity[1]
    if frac:
        return minus + decimal(written, frac), end
    case, gender, animate = _cardinal_agreement(n, _next_word(text, end), prep_case)
    return minus + _integer(written, case, gender, animate), end


def expand_numbers(text: str) -> str:
    """Spell out the numbers of Russian `text`: cardinals, ordinals ("5-й"), years, dates, times, money, percent.

    >>> expand_numbers("5-й дом, 2-го мая, в 1999 году")
    'пятый дом, второго мая, в тысяча девятьсот девяносто девятом году'
    >>> expand_numbers("$5, 3,5%, 10:30, -4")
    'пять долларов, три целых пять десятых процента, десять тридцать, минус четыре'
    """
    text = _THOUSANDS_RE.sub(lambda m: re.sub(rf"[{_SPACES}.]", "", m.group(0)), text)
    text = _DATE_RE.sub(_say_date, text)
    text = _TIME_RE.sub(_say_time, text)
    text = _RANGE_RE.sub(" ", text)
    out: list[str] = []
    pos = 0
    for m in _NUMBER_RE.finditer(text):
        if m.start() < pos:
            continue
        words, end = _say_number(text, m)
        before = text[pos : m.start()]
        out.append(before)
        if (before or (out and out[-1]))[-1:].isalpha():
            out.append(" ")  # "mp3" -> "mp три"
        out.append(words)
        if text[end : end + 1].isalpha():
            out.append(" ")
        pos = end
    out.append(text[pos:])
    return "".join(out)


# --- abbreviations ---------------------------------------------------------------------------------------------

# One table: (pattern, spoken form, kind). kind "end": it may close a sentence, so a period that also ends the
# sentence is kept ("и т.д." at the end -> "и так далее."); "noun": a noun that takes its preposition's case
# ("в г. Москве" -> "в городе москве"); "": neither. Longer patterns come first. Units after a number ("5 руб.",
# "2024 г.") are read with the number (see `_UNITS`); these are the readings elsewhere.
ABBREVIATIONS: tuple[tuple[str, str, str], ...] = (
    (r"и\s*т\.\s*д\.", "и так далее", "end"),
    (r"и\s*т\.\s*п\.", "и тому подобное", "end"),
    (r"т\.\s*д\.", "так далее", "end"),
    (r"т\.\s*п\.", "тому подобное", "end"),
    (r"т\.\s*е\.", "то есть", ""),
    (r"т\.\s*к\.", "так как", ""),
    (r"т\.\s*н\.", "так называемый", ""),
    (r"в\s*т\.\s*ч\.", "в том числе", ""),
    (r"н\.\s*э\.", "нашей эры", "end"),
    (r"и\s*др\.", "и другие", "end"),
    (r"и\s*пр\.", "и прочее", "end"),
    (r"др\.", "другие", "end"),
    (r"пр\.", "проспект", "noun"),
    (r"см\.", "смотри", ""),
    (r"ул\.", "улица", "noun"),
    (r"стр\.", "страница", "noun"),
    (r"д\.", "дом", "noun"),
    (r"гг\.", "годы", "end"),
    (r"г\.", "город", "noun"),
    (r"руб\.", "рублей", "end"),
    (r"коп\.", "копеек", "end"),
    (r"долл\.", "долларов", "end"),
    (r"тыс\.", "тысяч", "end"),
    (r"млн\.?", "миллионов", "end"),
    (r"млрд\.?", "миллиардов", "end"),
    (r"трлн\.?", "триллионов", "end"),
    (r"№", "номер", ""),
)
_ABBREVIATION_RE = re.compile(
    "|".join(
        rf"(?P<a{i}>(?<![{_CYR}a-z\d]){p}{'' if p == '№' else _NOT_LETTER})"
        for i, (p, _, _) in enumerate(ABBREVIATIONS)
    ),
    re.IGNORECASE,
)
_NOUN_PREPOSITION_CASE = {
    **dict.fromkeys("в во на о об обо при".split(), "p"),
    **dict.fromkeys("из до от у для около возле после с со без напротив".split(), "g"),
    **dict.fromkeys("к ко по".split(), "d"),
    **dict.fromkeys("за под над перед между".split(), "i"),
}


def _say_abbreviation(m: re.Match[str]) -> str:
    i = int(next(k for k, v in m.groupdict().items() if v is not None)[1:])
    _, spoken, kind = ABBREVIATIONS[i]
    if kind == "noun":
        case = _NOUN_PREPOSITION_CASE.get(_previous_word(m.string, m.start()), "n")
        if case != "n":
            spoken = _agree(spoken, 1, case)
    elif kind == "end" and m.group(0).endswith(".") and _ends_sentence(m.string, m.end()):
        spoken += "."
    # Spaced off from a neighbour it was glued to ("№5" -> "номер 5"), without doubling existing spaces.
    lead = " " if m.start() and not m.string[m.start() - 1].isspace() else ""
    trail = " " if m.end() < len(m.string) and not m.string[m.end()].isspace() else ""
    return f"{lead}{spoken}{trail}"


def expand_abbreviations(text: str) -> str:
    """Read the abbreviations of `ABBREVIATIONS`: "т.е." -> "то есть", "на ул. Ленина" -> "на улице Ленина".

    >>> expand_abbreviations("Книги, журналы и т.д.").strip()
    'Книги, журналы и так далее.'
    """
    return _ABBREVIATION_RE.sub(_say_abbreviation, text)


# --- Latin words -----------------------------------------------------------------------------------------------

# A spelling rule (letters and digraphs, longest first), not a pronunciation dictionary: "Google" -> "гугле",
# "Python" -> "питон", "Microsoft" -> "микрософт". "c", "y" and a word-initial "e" depend on their neighbours
# and are handled in `transliterate_latin`.
LATIN_RULES: tuple[tuple[str, str], ...] = (
    ("sch", "ш"), ("tch", "ч"), ("sh", "ш"), ("ch", "ч"), ("th", "т"), ("ph", "ф"), ("kh", "х"), ("zh", "ж"),
    ("ck", "к"), ("qu", "кв"), ("wh", "в"), ("oo", "у"), ("ee", "и"), ("ya", "я"), ("yu", "ю"),
    ("a", "а"), ("b", "б"), ("d", "д"), ("e", "е"), ("f", "ф"), ("g", "г"), ("h", "х"), ("i", "и"), ("j", "дж"),
    ("k", "к"), ("l", "л"), ("m", "м"), ("n", "н"), ("o", "о"), ("p", "п"), ("q", "к"), ("r", "р"), ("s", "с"),
    ("t", "т"), ("u", "у"), ("v", "в"), ("w", "в"), ("x", "кс"), ("z", "з"),
)  # fmt: skip
_LATIN_WORD_RE = re.compile(r"[a-z+]*[a-z][a-z+]*(?:['’][a-z+]+)*", re.IGNORECASE)
# Letters with diacritics ("café", "Müller") are read as their base letter; a few ligatures by hand.
_LATIN_LIGATURES = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "ł": "l", "đ": "d", "þ": "th", "ı": "i"}


@functools.lru_cache(maxsize=2048)
def _fold_latin_char(ch: str) -> str:
    low = ch.lower()
    if low in _LATIN_LIGATURES:
        return _LATIN_LIGATURES[low]
    if not unicodedata.name(ch, "").startswith("LATIN"):
        return ch
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if c.isascii() and c.isalpha())
    return base or ch


def transliterate_latin(word: str) -> str:
    """Cyrillic spelling of a Latin word by `LATIN_RULES`; "+" stress marks pass through.

    >>> [transliterate_latin(w) for w in ("Google", "Python", "city", "yes")]
    ['гугле', 'питон', 'цити', 'йес']
    """
    w = word.lower().replace("'", "").replace("’", "")
    out: list[str] = []
    i = 0
    while i < len(w):
        ch, nxt = w[i], w[i + 1 : i + 2]
        prev = w[i - 1] if i else ""
        if ch == "+":
            out.append("+")
        elif ch == "c" and nxt not in ("h", "k"):
            out.append("ц" if nxt in ("e", "i", "y") else "к")
        elif ch == "y" and not w.startswith(("ya", "yu"), i):
            near_vowel = (prev != "" and prev in _LATIN_VOWELS) or (nxt != "" and nxt in _LATIN_VOWELS)
            out.append("й" if near_vowel else "и")
        elif ch == "e" and (i == 0 or prev == "+" and i == 1):
            out.append("э")
        else:
            latin, cyrillic = next(((a, b) for a, b in LATIN_RULES if w.startswith(a, i)), (ch, ch))
            out.append(cyrillic)
            i += len(latin)
            continue
        i += 1
    return "".join(out)


# --- characters, quotes, dashes, punctuation -------------------------------------------------------------------

_ACCENT_RE = re.compile(r"\+?([аеиоуыэюя]\u0308?)[\u0301\u0300\u00b4]", re.IGNORECASE)
_INVISIBLE_RE = re.compile("[\u00ad\u200b\u200c\u200d\u2060\ufeff]")
_QUOTES_RE = re.compile('[«»„“”‟"‹›]')
_APOSTROPHE_RE = re.compile("['‘’‚‛`´]")
_PLUS_RE = re.compile(r"\+(?![аеёиоуыэюяaeiouy])", re.IGNORECASE)
_DASH_RE = re.compile(r"\s*(?:[—–‒―]+|-+)\s*")
_SPACE_BEFORE_RE = re.compile(r"\s+(?=[,.!?;:)])")
_DOUBLED_COMMA_RE = re.compile(r"([,.!?;:(])\s*,")
_COMMA_BEFORE_RE = re.compile(r",\s*(?=[.!?;:)])")
_WHITESPACE_RE = re.compile(r"\s+")


def _normalize_characters(text: str) -> str:
    """Unicode forms, written accents as "+", quotes and apostrophes, ellipsis, and "+" that is not a stress mark."""
    text = unicodedata.normalize("NFD", text)
    text = _ACCENT_RE.sub(r"+\1", text)  # "заме́к" -> "зам+ек"
    text = unicodedata.normalize("NFC", text)  # recomposes й and ё
    text = _INVISIBLE_RE.sub("", text).replace("…", "...")
    text = _QUOTES_RE.sub("", text)
    # An apostrophe between letters ("д'Артаньян") is kept; any other is a quote mark.
    text = _APOSTROPHE_RE.sub(
        lambda m: (
            "'" if m.string[m.start() - 1 : m.start()].isalpha() and m.string[m.end() : m.end() + 1].isalpha() else ""
        ),
        text,
    )
    return _PLUS_RE.sub(" плюс ", text)  # a stress mark stands before a vowel; "2+2", "+5", "C++" are pluses


def _say_dash(m: re.Match[str]) -> str:
    # A hyphen with a letter or digit on both sides and no space is part of a word ("кто-то"); any other dash is
    # a pause, which the table spells as a comma.
    text, s, e = m.string, m.start(), m.end()
    joined = m.group(0) == "-" and text[s - 1 : s].isalnum() and (text[e : e + 1].isalnum() or text[e : e + 1] == "+")
    return "-" if joined else ", "


def _tidy(text: str) -> str:
    """Single spaces, no space before punctuation, no comma doubled or leading a sentence."""
    text = _WHITESPACE_RE.sub(" ", text)
    text = _SPACE_BEFORE_RE.sub("", text)
    text = _DOUBLED_COMMA_RE.sub(r"\1", text)
    text = _COMMA_BEFORE_RE.sub("", text)
    text = re.sub(r"\(\s+", "(", text)
    return text.strip(" ,")


def russian_cleaners(text: str) -> str:
    """Russian text -> the `russian_v1` alphabet: numbers and abbreviations read, Latin transliterated, lowercase.

    >>> russian_cleaners("«Привет», — сказал он в 10:30 т.е. утром. Всё!")
    'привет, сказал он в десять тридцать то есть утром. всё!'
    >>> russian_cleaners("Зам+ок на ул. Ленина, д. 5 — 2-й этаж; Google")
    'зам+ок на улице ленина, дом пять, второй этаж; гугле'
    """
    text = _normalize_characters(text)
    text = expand_numbers(text)
    text = expand_abbreviations(text)
    text = _DASH_RE.sub(_say_dash, text)
    text = _LATIN_WORD_RE.sub(lambda m: transliterate_latin(_fold_latin_text(m.group(0))), _fold_latin_text(text))
    return _tidy(text.lower())


def _fold_latin_text(text: str) -> str:
    return "".join(_fold_latin_char(ch) if not ch.isascii() and not "а" <= ch.lower() <= "я" else ch for ch in text)


__all__ = [
    "ABBREVIATIONS",
    "LATIN_RULES",
    "cardinal",
    "decimal",
    "digits",
    "expand_abbreviations",
    "expand_numbers",
    "ordinal",
    "russian_cleaners",
    "transliterate_latin",
]
