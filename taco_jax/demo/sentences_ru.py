"""The Russian demo sentence generator: a template grammar over the lexicon in `vocabulary_ru`.

Every form comes from pymorphy3, so subjects agree with their verbs (person, number, gender in the past),
adjectives and determiners with their nouns (gender, number, case, animacy), prepositions govern their cases
and numbers govern their nouns ("2 книги", "5 книг", "21 книгу"). Verbs take objects that suit them and come
in both aspects and three tenses. About one sentence in five has a number written with digits (counts,
years, clock times, prices, ordinals, ages, durations) for the text cleaner to expand.

    The first three of seed 4 (at GENERATOR_VERSION 1):

    >>> for sentence in generate_sentences_ru(3, seed=4):  # doctest: +SKIP
    ...     print(sentence)
    Эта погода была хорошая, и в субботу она поехала в просторную гостиницу.
    Открой учебник на 193-й странице.
    Я заплатила 5300 рублей за его журналы.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from taco_jax.demo.sentences import distinct_sentences
from taco_jax.demo.vocabulary_ru import PLACE_PREPOSITION, Noun, RussianLexicon, Verb, russian_lexicon

__all__ = ["DIGIT_SHARE", "GENERATOR_VERSION", "MAX_WORDS", "MIN_WORDS", "generate_sentences_ru", "ordinal_suffix"]

# Bump when the sentences change (templates, word lists, choices): part of the Russian corpus's cache hash, so a
# changed generator builds a new corpus (English corpora are unaffected).
GENERATOR_VERSION = 1

# Word-count range handed to the generator (as in the English one); the corpus rejects by audio length later.
MIN_WORDS = 3
MAX_WORDS = 14
DIGIT_SHARE = 0.2  # share of sentences built around a number written with digits

_F = frozenset
_VOWELS = set("аеёиоуыэюя")

# Subject pronouns: (word, person, number, gender or None = chosen per sentence for я / ты).
_PRONOUNS = (
    ("я", "1per", "sing", None), ("ты", "2per", "sing", None), ("он", "3per", "sing", "masc"),
    ("она", "3per", "sing", "femn"), ("мы", "1per", "plur", None), ("вы", "2per", "plur", None),
    ("они", "3per", "plur", None),
)  # fmt: skip
# The same pronouns in the cases the templates use (after a preposition the third person takes "н").
_PRONOUN_CASES = {
    "я": {"datv": "мне", "gent": "меня", "ablt": "мной"},
    "ты": {"datv": "тебе", "gent": "тебя", "ablt": "тобой"},
    "он": {"datv": "ему", "gent": "него", "ablt": "ним", "prep_datv": "нему"},
    "она": {"datv": "ей", "gent": "неё", "ablt": "ней", "prep_datv": "ней"},
    "мы": {"datv": "нам", "gent": "нас", "ablt": "нами"},
    "вы": {"datv": "вам", "gent": "вас", "ablt": "вами"},
    "они": {"datv": "им", "gent": "них", "ablt": "ними", "prep_datv": "ним"},
}
# Pronouns that would name the subject again (or include it): "мы ... со мной", "вы ... с тобой".
_SAME_PEOPLE = {"я": ("я", "мы"), "ты": ("ты", "вы"), "мы": ("я", "мы"), "вы": ("ты", "вы"), "он": ("он",),
                "она": ("она",), "они": ("они",)}  # fmt: skip
# Possessive determiners that turn into "свой" when they refer to the subject ("я взял свою сумку").
_REFLEXIVE_OWNER = {"мой": "я", "твой": "ты", "наш": "мы", "ваш": "вы"}
_DETERMINERS = ("этот", "этот", "этот", "мой", "твой", "наш", "ваш", "его", "её", "их")
# Classes whose nouns someone can own ("мой зонт"); the others only take "этот" ("этот фильм", not "их загадка").
_OWNED = _F("person animal thing clothes furniture transport text place_v".split())
_KIN = _F("мама папа брат сестра бабушка дедушка сын дочь внук внучка тётя дядя друг подруга".split())
# Verbs that create their object: it belongs to nobody yet ("написал письмо", not "написал ваши рассказы").
_CREATION = _F("писать написать рисовать нарисовать готовить приготовить строить построить".split())
# Verbs of shared activities, which take a companion ("гуляли с братом"; not "забыл зонт с братом").
_WITH_VERBS = _F(
    "гулять погулять работать поработать играть поиграть петь спеть танцевать потанцевать обедать пообедать "
    "ужинать поужинать завтракать позавтракать разговаривать поговорить кататься покататься отдыхать отдохнуть "
    "бегать побегать плавать поплавать рисовать нарисовать готовить приготовить строить построить обсуждать "
    "обсудить смотреть посмотреть слушать послушать убирать убрать мыть помыть чинить починить жить идти пойти "
    "ехать поехать ходить ездить съездить приходить прийти приезжать приехать заходить зайти отправляться "
    "отправиться возвращаться вернуться кормить покормить учить выучить фотографировать читать".split()
)
# Imperfective verbs whose compound future ("буду терять") sounds wrong outside special contexts.
_NO_IMPF_FUTURE = _F(
    "терять забывать понимать получать будить благодарить встречать приглашать звать любить помнить идти ехать "
    "бежать спешить".split()
)
_FOOT = _F("идти пойти ходить бежать побежать спешить заходить зайти возвращаться вернуться приходить прийти".split())
_ONE_OFF = _F("снова опять уже наконец ещё".split())  # adverbs that clash with habitual time ("обычно")
# Verbs that count their objects in sentences with numbers ("купила 3 яблока").
_COUNT_VERBS = _F(
    "купить прочитать написать принести взять найти нарисовать приготовить съесть заказать получить отправить "
    "выбрать починить построить подарить продать потерять выучить решить сфотографировать помыть открыть".split()
)
_PURPOSE_VERBS = _F(
    "купить взять найти посмотреть послушать встретить навестить сфотографировать покормить пригласить заказать "
    "отправить получить выбрать починить".split()
)
_DURATION_VERBS = _F("гулять работать играть петь танцевать читать рисовать бегать плавать ждать спать".split())
# Sentences with numbers: counts, years, clock times, prices, ordinals, ages, durations, distances (`_Maker.n_*`).
_NUMBER_KINDS = (
    "count", "count", "have", "year", "year", "clock", "clock", "price", "price", "ordinal", "ordinal", "age",
    "duration", "distance",
)  # fmt: skip
# What nobody "has" ("у брата есть электричка", "у тебя есть дверь").
_NOT_OWNED = _F(
    "автобус поезд трамвай троллейбус такси самолёт корабль электричка окно дверь забор крыша лестница плита".split()
)
_PAIRED = _F("сапог ботинок носок перчатка варежка тапочка".split())  # worn in pairs: always plural
_ANIMAL_PLACES = "парк лес сад двор поле поляна река озеро берег комната дом дача диван кресло кровать ковёр балкон"
# Time adverbs for verbs of state that a point in time does not suit ("сегодня утром жил" does not).
_STATE_TIMES = {
    "past": ("раньше", "давно", "в прошлом году", "летом", "зимой"), "pres": ("сейчас", "теперь"),
    "futr": ("скоро", "в следующем году", "летом"),
}  # fmt: skip
_ANIMAL_OBJECTS = _F("animal food drink person".split())
# Events that make no sense as the time of a verb ("позавтракал до завтрака", "гулял перед прогулкой").
_WHEN_CLASH = {
    "обед": _F(("обедать", "пообедать")), "ужин": _F(("ужинать", "поужинать")),
    "завтрак": _F(("завтракать", "позавтракать")), "прогулка": _F(("гулять", "погулять")),
    "тренировка": _F(("бегать", "побегать")), "репетиция": _F(("петь", "спеть")),
}  # fmt: skip
_MAX_MODS = 2  # prepositional phrases per clause: more reads like a list

_TIME_PAST = (
    "вчера", "позавчера", "недавно", "утром", "вечером", "днём", "весной", "летом", "осенью", "зимой",
    "на прошлой неделе", "в прошлом году", "сегодня утром", "в субботу", "во вторник", "в воскресенье",
)  # fmt: skip
_TIME_PRESENT = ("сейчас", "сегодня", "теперь")
_TIME_HABITUAL = ("обычно", "часто", "иногда", "всегда", "каждый день", "по утрам", "по вечерам", "по субботам")
_TIME_FUTURE = (
    "завтра", "послезавтра", "скоро", "вечером", "утром", "на следующей неделе", "в следующем году", "летом",
    "в субботу", "в пятницу", "потом", "сегодня вечером",
)  # fmt: skip
_STATIVE = _F("видеть увидеть слышать услышать любить помнить жить сидеть посидеть спать поспать".split())
_PREDICATIVES = (
    "тихо", "тепло", "холодно", "шумно", "весело", "уютно", "светло", "темно", "прохладно", "жарко", "солнечно",
    "красиво", "интересно", "хорошо",
)  # fmt: skip
_SPEECH = (("сказать", "past"), ("говорить", "pres"), ("думать", "pres"), ("знать", "pres"), ("писать", "pres"))
_CONNECTORS = (", потому что ", ", но ", ", а ", ", и ", ", поэтому ")
# Where intransitive verbs happen; verbs not listed take any place_v / place_na / nature noun or a city.
_LOCATIONS = {
    "жить": "city деревня посёлок дом квартира город дача остров",
    "спать": "комната дом квартира дача балкон диван кровать кресло",
    "поспать": "комната дом квартира дача балкон диван кровать кресло",
    "обедать": "кафе ресторан кухня дом дача", "пообедать": "кафе ресторан кухня дом дача",
    "ужинать": "кафе ресторан кухня дом дача", "поужинать": "кафе ресторан кухня дом дача",
    "завтракать": "кафе кухня дом дача балкон", "позавтракать": "кафе кухня дом дача балкон",
    "плавать": "река озеро море бассейн", "поплавать": "река озеро море бассейн",
    "учиться": "city школа университет институт класс город",
    "кататься": "каток парк двор озеро гора поле", "покататься": "каток парк двор озеро гора поле",
    "петь": "праздник концерт репетиция театр кафе", "спеть": "праздник концерт репетиция театр кафе",
    "танцевать": "праздник концерт театр кафе ресторан", "потанцевать": "праздник концерт театр кафе ресторан",
    "сидеть": "комната кухня кафе парк сад балкон урок лекция диван кресло",
    "гулять": "парк лес сад двор поле поляна берег остров площадь улица city город деревня пляж",
    "погулять": "парк лес сад двор поле поляна берег остров площадь улица city город деревня пляж",
    "посидеть": "комната кухня кафе парк сад балкон диван кресло",
}  # fmt: skip
# Furniture that can be a location, with its preposition ("на диване", "в кресле").
_FURNITURE_PREPOSITION = {"диван": "на", "кровать": "на", "кресло": "в", "стул": "на", "полка": "на", "ковёр": "на"}
# Not reached by car, bus or train.
_INDOORS = _F(
    "комната квартира класс кухня балкон двор дом коридор кабинет подъезд чердак веранда сарай зал гараж".split()
)
_BY_VEHICLE = _F("ехать поехать ездить съездить приезжать приехать отправляться отправиться".split())
_FROM_VERBS = _F("возвращаться вернуться приходить прийти приезжать приехать".split())
_FOR_VERBS = _F(
    "покупать купить готовить приготовить рисовать нарисовать писать написать заказывать заказать выбирать выбрать "
    "строить построить".split()
)
_TOPIC_VERBS = _F("разговаривать поговорить".split())
_NO_IMPERATIVE = _F(
    "видеть увидеть слышать услышать любить помнить терять потерять забывать забыть понимать понять получать "
    "получить встречать благодарить будить искать".split()
)


def ordinal_suffix(word: str) -> str:
    """The ending written after the digits of an ordinal: the last letter after a vowel, else the last two.

    >>> [ordinal_suffix(w) for w in ("пятый", "пятого", "пятому", "третьем", "первая", "седьмыми")]
    ['й', 'го', 'му', 'м', 'я', 'ми']
    """
    return word[-1] if word[-2] in _VOWELS else word[-2:]


def count_form(lex: RussianLexicon, noun: Noun, n: int, case: str = "nomn") -> str:
    """The noun after the number `n` in a nominative or (inanimate) accusative phrase.

    >>> lex = russian_lexicon()
    >>> [count_form(lex, lex.nouns["книга"], n, "accs") for n in (1, 2, 5, 11, 21)]
    ['книгу', 'книги', 'книг', 'книг', 'книгу']
    """
    if 11 <= n % 100 <= 14 or n % 10 in (0, 5, 6, 7, 8, 9):
        return "лет" if noun.lemma == "год" else lex.noun_form(noun, "gent", "plur")
    if n % 10 == 1:
        return lex.noun_form(noun, case, "sing")
    return lex.noun_form(noun, "gent", "sing")


def _with_prep(prep: str, phrase: str) -> str:
    """`prep phrase` with the euphonic forms: "во вторник", "со стола", "ко мне", "об озере"."""
    w = phrase.split()[0].lower()
    if prep == "в" and (w[:1] in "вф" and w[1:2] not in _VOWELS or w.startswith(("мн", "двор"))):
        prep = "во"
    elif prep == "с" and (w[:1] in "сзшжщ" and w[1:2] not in _VOWELS or w.startswith(("мн", "льв"))):
        prep = "со"
    elif prep == "к" and w.startswith(("мн", "вс", "вт")):
        prep = "ко"
    elif prep == "о" and w[:1] in "аоуэи":
        prep = "об"
    elif prep in ("под", "над", "перед") and w == "мной":
        prep += "о"
    return f"{prep} {phrase}"


def _cap(text: str) -> str:
    """First letter upper case, the rest as is (str.capitalize would lower "Москве")."""
    return text[:1].upper() + text[1:]


def _past(np_: _NP) -> set[str]:
    """The past-tense grammemes of a verb agreeing with the noun phrase `np_`."""
    return {"past", "plur"} if np_.number == "plur" else {"past", "sing", np_.noun.gender}


def _to_addressee(np_: _NP) -> _NP:
    """The addressee's possessive in an imperative is "свой" ("не забудьте свой билет")."""
    if np_.det in ("твой", "ваш"):  # the addressee's own: "не забудь свой кошелёк"
        return replace(np_, det="свой")
    return np_


class _Deck:
    """Draw without replacement, reshuffling when empty, so every item gets used before any repeats."""

    def __init__(self, items: Sequence, rng: np.random.Generator) -> None:
        self.items, self.rng, self.order, self.pos = tuple(items), rng, np.zeros(0, np.int64), 0

    def draw(self):
        if self.pos >= len(self.order):
            self.order, self.pos = self.rng.permutation(len(self.items)), 0
        self.pos += 1
        return self.items[self.order[self.pos - 1]]


@dataclass(frozen=True)
class _NP:
    """A noun phrase: [determiner] [adjective] noun [owner in the genitive]."""

    noun: Noun
    number: str = "sing"
    adj: str | None = None
    det: str | None = None
    owner: _NP | None = None

    @property
    def gender(self) -> str | None:
        return self.noun.gender if self.number == "sing" else None

    def form(self, lex: RussianLexicon, case: str, subject: str | None = None) -> str:
        """The phrase in `case`; a possessive that refers to `subject` (a pronoun) becomes "свой"."""
        words = []
        det = self.det
        if det in _REFLEXIVE_OWNER and _REFLEXIVE_OWNER[det] == subject:
            det = "свой"
        for mod in (det, self.adj):
            if mod in ("его", "её", "их"):
                words.append(mod)
            elif mod:
                words.append(lex.adj_form(mod, "loct" if case == "loc2" else case, self.gender, self.number,
                                          self.noun.animate))  # fmt: skip
        words.append(lex.noun_form(self.noun, case, self.number))
        if self.owner is not None:
            words.append(self.owner.form(lex, "gent"))
        return " ".join(words)


@dataclass(frozen=True)
class _Subj:
    """A subject: its nominative words and what the verb agrees with."""

    words: str
    person: str  # 1per / 2per / 3per
    number: str
    gender: str | None  # for the past singular
    pronoun: str | None = None  # the pronoun itself ("я"), for "свой" and the object pronoun forms
    animal: bool = False

    def past_tags(self) -> set[str]:
        return {"plur"} if self.number == "plur" else {"sing", self.gender or "masc"}


@dataclass
class _Clause:
    """One finite clause; optional slots are filled by `_Maker.grow` until the sentence is long enough."""

    subj: _Subj
    verb: Verb
    tense: str  # past / pres / futr
    aspect: str  # impf / perf
    obj: _NP | None = None
    obj_text: str | None = None  # an object already inflected ("5 книг"), in place of `obj`
    dat: str | None = None  # recipient, already in the dative
    time: str | None = None
    adverb: str | None = None
    negated: bool = False
    dest: str | None = None  # motion: "в парк", "к бабушке", "домой"
    mods: list[str] = field(default_factory=list)  # prepositional phrases after the verb group
    rel: str | None = None  # relative clause on the object (", которую ...")
    filled: set[str] = field(default_factory=set)


class _Maker:
    """The template grammar; all random choices come from one generator, in a fixed order."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.lex = lex = russian_lexicon()
        self.classes = {c: _Deck(lex.nouns_of(c), rng) for c in {n.cls for n in lex.nouns.values()}}
        self.adjs = {c: _Deck(a, rng) for c, a in lex.adjectives.items()}
        self.verbs = {k: _Deck([v for v in lex.verbs if v.kind == k], rng) for k in ("trans", "intr", "motion")}
        self.hint: str | None = None
        self.buyable = next(v.objects for v in lex.verbs if v.perf == "купить")
        self.by_object: dict[str, list[Verb]] = {}
        for v in lex.verbs:
            for lemma in v.objects:
                self.by_object.setdefault(lemma, []).append(v)

    # -- small helpers ------------------------------------------------------------------------------------
    def p(self, prob: float) -> bool:
        return bool(self.rng.random() < prob)

    def pick(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def noun(self, *classes: str) -> Noun:
        return self.classes[self.pick(classes)].draw()

    def np(self, noun: Noun, plural: float = 0.25, adj: float = 0.35, det: float = 0.35, own: bool = True) -> _NP:
        number = "plur" if noun.countable and (self.p(plural) or noun.lemma in _PAIRED) else "sing"
        a = self.adjs[noun.cls].draw() if noun.cls in self.adjs and self.p(adj) else None
        d = self.determiner(noun, own) if not noun.proper and self.p(det) else None
        return _NP(noun, number, a, d)

    def determiner(self, noun: Noun, own: bool = True) -> str:
        """E.g. "этот" or a possessive, as suits the noun: relatives are someone's ("моя сестра", not "эта сестра"),
        public places ours at most ("наш театр")."""
        if noun.lemma in _KIN:
            return self.pick(_DETERMINERS[3:])
        if noun.cls == "place_v":
            return self.pick(("этот", "этот", "наш"))
        if noun.cls == "person":
            return self.pick(("этот", "этот", "наш", "мой"))
        return self.pick(_DETERMINERS) if own and noun.cls in _OWNED else "этот"

    def lemma(self, verb: Verb, aspect: str) -> str:
        return verb.imperf if aspect == "impf" else verb.perf  # type: ignore[return-value]

    def finite(self, verb: Verb, tense: str, aspect: str, subj: _Subj) -> str:
        """The verb group agreeing with `subj` ("купила", "читаем", "будут читать", "прочитаю")."""
        lemma = self.lemma(verb, aspect)
        if tense == "past":
            return self.lex.verb_form(lemma, _F({"past"} | subj.past_tags()))  # type: ignore[return-value]
        if tense == "futr" and aspect == "impf":
            be = self.lex.verb_form("быть", _F({"futr", subj.person, subj.number}))
            return f"{be} {lemma}"
        return self.lex.verb_form(lemma, _F({tense, subj.person, subj.number}))  # type: ignore[return-value]

    def tense_aspect(self, verb: Verb, tenses: Sequence[str] = ("past", "past", "pres", "futr")) -> tuple[str, str]:
        """(tense, aspect): present tense only for imperfectives; the future mostly perfective."""
        tense = self.pick(tenses)
        if verb.perf is None:
            if tense == "futr" and verb.imperf in _NO_IMPF_FUTURE:
                tense = "past" if "past" in tenses else "pres"
            return tense, "impf"
        if verb.imperf is None:
            return ("past" if tense == "pres" else tense), "perf"
        if tense == "pres":
            return tense, "impf"
        if tense == "futr":
            return tense, ("impf" if verb.imperf not in _NO_IMPF_FUTURE and self.p(0.25) else "perf")
        return tense, ("perf" if self.p(0.55) else "impf")

    # -- subjects, objects, places --------------------------------------------------------------------------
    def pronoun(self) -> _Subj:
        word, person, number, gender = self.pick(_PRONOUNS)
        if gender is None and number == "sing":
            gender = self.pick(("masc", "femn"))
        return _Subj(word, person, number, gender, pronoun=word)

    def subject(self, animal_ok: bool = False) -> _Subj:
        """A pronoun, a name or a noun phrase (people; animals too where the verb allows)."""
        r = self.rng.random()
        if r < 0.38:
            return self.pronoun()
        if r < 0.52:
            return _Subj(*self.name_subject())
        animal = animal_ok and self.p(0.3)
        np_ = self.np(self.noun("animal" if animal else "person"), plural=0.25, adj=0.25, det=0.45)
        return _Subj(np_.form(self.lex, "nomn"), "3per", np_.number, np_.gender, animal=animal)

    def name_subject(self) -> tuple[str, str, str, str]:
        name = self.noun("name")
        return name.lemma, "3per", "sing", name.gender

    def person_phrase(self, case: str, subj: _Subj | None = None, after_prep: bool = False, plural: float = 0.2) -> str:
        """A person (pronoun, name or noun phrase) in `case`; never the subject's own pronoun."""
        if self.p(0.25):
            taken = _SAME_PEOPLE.get(subj.pronoun, ()) if subj is not None else ()
            word = self.pick([p[0] for p in _PRONOUNS if p[0] not in taken])
            forms = _PRONOUN_CASES[word]
            return forms.get(f"prep_{case}", forms[case]) if after_prep else forms[case]
        if self.p(0.25):
            return self.lex.noun_form(self.noun("name"), case, "sing")
        np_ = self.np(self.noun("person"), plural=plural, adj=0.15, det=0.4)
        return np_.form(self.lex, case, subj and subj.pronoun)

    def goods(self) -> Noun:
        """Something to buy (what "купить" takes): for prices."""
        return self.lex.nouns[self.pick(self.buyable)]

    def object_np(self, verb: Verb, subj: _Subj) -> _NP:
        objects = verb.objects
        if subj.animal:  # a cat finds a ball or a mouse, not a newspaper
            objects = tuple(x for x in objects if self.lex.nouns[x].cls in _ANIMAL_OBJECTS) or ("мяч",)
        noun = self.lex.nouns[self.pick(objects)]
        return self.np(noun, plural=0.25, adj=0.3, det=0.35, own=not {verb.imperf, verb.perf} & _CREATION)

    def place_noun(self, lemma_of: str | None, animal: bool = False) -> tuple[Noun, str]:
        """(noun, preposition) of a location suited to the verb `lemma_of` (and to an animal subject)."""
        allowed = _ANIMAL_PLACES if animal else _LOCATIONS.get(lemma_of or "")
        if allowed:
            word = self.pick(allowed.split())
            noun = self.noun("city") if word == "city" else self.lex.nouns[word]
        else:
            noun = self.noun("city") if self.p(0.1) else self.noun("place_v", "place_v", "place_na", "nature")
        prep = _FURNITURE_PREPOSITION.get(noun.lemma) or PLACE_PREPOSITION.get(noun.cls, "в")
        return noun, prep

    def location(self, lemma_of: str | None, subj: _Subj | None = None) -> str:
        noun, prep = self.place_noun(lemma_of, animal=subj is not None and subj.animal)
        np_ = self.np(noun, plural=0.0, adj=0.2, det=0.25)
        return _with_prep(prep, np_.form(self.lex, "loc2", subj and subj.pronoun))

    def destination(self, verb: Verb, subj: _Subj) -> str:
        """Where a motion verb goes: "в парк", "на вокзал", "в Казань", "к бабушке", "домой"."""
        vehicle = bool({verb.imperf, verb.perf} & _BY_VEHICLE)
        r = self.rng.random()
        if subj.animal:  # animals run home or outdoors
            if r < 0.2:
                return "домой"
            noun = self.lex.nouns[self.pick(_ANIMAL_PLACES.split()[:9])]
            return _with_prep(PLACE_PREPOSITION[noun.cls], self.lex.noun_form(noun, "accs", "sing"))
        if r < 0.12:
            return "домой"
        if r < 0.3:
            return _with_prep("к", self.person_phrase("datv", subj, after_prep=True))
        if vehicle and r < 0.5:
            return _with_prep("в", self.lex.noun_form(self.noun("city"), "accs", "sing"))
        while True:
            noun = self.noun("place_v", "place_v", "place_na", "nature", "event")
            if not (vehicle and noun.lemma in _INDOORS):
                break
        np_ = self.np(noun, plural=0.0, adj=0.15, det=0.2)
        return _with_prep(PLACE_PREPOSITION[noun.cls], np_.form(self.lex, "accs", subj.pronoun))

    # -- clauses ----------------------------------------------------------------------------------------
    def clause(self, kind: str | None = None, tenses: Sequence[str] | None = None) -> _Clause:
        kind = kind or self.pick(("trans", "trans", "trans", "intr", "intr", "motion"))
        tenses = tenses or ("past", "past", "pres", "futr")
        verb = self.verbs[kind].draw()
        subj = self.subject(animal_ok=verb.animal_subject)
        tense, aspect = self.tense_aspect(verb, tenses)
        c = _Clause(subj, verb, tense, aspect, negated=self.p(0.1))
        if kind == "trans":
            c.obj = self.object_np(verb, subj)
        elif kind == "motion":
            c.dest = self.destination(verb, subj)
        elif self.lemma(verb, aspect) == "жить":  # one lives somewhere
            self.fill(c, "location")
        return c

    def verb_lemma(self, c: _Clause) -> str:
        return self.lemma(c.verb, c.aspect)

    def realize(self, c: _Clause, front: str | None = None, drop_obj: bool = False) -> str:
        """The clause as text (no final punctuation); `front` replaces the time adverb (a question word)."""
        lex, who = self.lex, c.subj.pronoun
        obj = None if (c.obj is None or drop_obj) else c.obj.form(lex, "accs", who)
        obj = obj or c.obj_text
        words = [front or c.time, c.subj.words, c.adverb, "не" if c.negated else None]
        words += [self.finite(c.verb, c.tense, c.aspect, c.subj), c.dat]
        words += ([None] if c.rel else [obj]) + [c.dest, *c.mods]
        if c.rel:
            words.append(obj)
        text = " ".join(w for w in words if w)
        return text + (c.rel or "")

    def adverb_options(self, c: _Clause) -> list[str]:
        lemma = self.verb_lemma(c)
        if lemma in _STATIVE:
            return ["тоже"]
        once = c.time not in _TIME_HABITUAL  # "всегда ... уже" contradicts itself
        opts = ["тоже"] + (["снова", "опять"] if once else [])
        if c.negated:
            return opts + (["ещё"] if c.tense != "futr" and once else [])
        if c.tense != "futr" and once:
            opts.append("уже")
        if c.aspect == "perf" and c.tense != "pres":
            opts.append("наконец")
        if lemma not in _STATIVE:
            opts += ["быстро", "с удовольствием"]
        if c.aspect == "impf" and lemma not in ("любить", "помнить", "видеть", "слышать"):
            opts.append("долго")
        if c.subj.number == "plur" and c.subj.pronoun != "вы":
            opts.append("вместе")
        return opts

    def time_options(self, c: _Clause) -> tuple[str, ...]:
        if self.verb_lemma(c) in ("жить", "любить", "помнить"):
            return _STATE_TIMES[c.tense]
        if c.tense == "futr":
            return _TIME_FUTURE
        base = _TIME_PAST if c.tense == "past" else _TIME_PRESENT
        habitual = c.aspect == "impf" and self.verb_lemma(c) not in _STATIVE and c.adverb not in _ONE_OFF
        return base + (_TIME_HABITUAL if habitual else ())

    # -- growing a clause -------------------------------------------------------------------------------
    def slots(self, c: _Clause, last: bool) -> list[str]:
        """The optional parts `fill` can still add to `c` (`last`: nothing follows it in the sentence)."""
        lemma, kind = self.verb_lemma(c), c.verb.kind
        out = [s for s in ("time", "adverb") if s not in c.filled]
        room = len(c.mods) < _MAX_MODS
        if room and kind != "motion" and "location" not in c.filled and not (kind == "trans" and c.subj.animal):
            out.append("location")
        if room and "with" not in c.filled and lemma in _WITH_VERBS and not c.subj.animal:
            out.append("with")
        if room and "when" not in c.filled and not c.subj.animal and lemma not in _STATIVE:
            out.append("when")
        if c.obj is not None:
            out += [s for s in ("adj", "det") if getattr(c.obj, s) is None and not (s == "det" and c.obj.owner)]
            creation = bool({c.verb.imperf, c.verb.perf} & _CREATION)
            owned = c.obj.noun.cls in ("thing", "clothes", "animal") and not creation
            if c.obj.owner is None and c.obj.det is None and owned:
                out.append("owner")
            if not ({"dat", "for"} & c.filled):
                out += (["dat"] if c.verb.dative else []) + (["for"] if room and lemma in _FOR_VERBS else [])
            other_verbs = c.obj.noun.animate or len(self.by_object[c.obj.noun.lemma]) > 1
            if last and not c.rel and "rel" not in c.filled and c.obj.number == "sing" and other_verbs:
                out.append("rel")
        if kind == "motion" and room and not c.subj.animal:
            out += [s for s in ("via", "without") if s not in c.filled and (s != "via" or lemma in _FOOT)]
            if lemma in _BY_VEHICLE and "transport" not in c.filled:
                out.append("transport")
            if last and "purpose" not in c.filled and not c.subj.animal:
                out.append("purpose")
        if room and lemma in _TOPIC_VERBS and "topic" not in c.filled:
            out.append("topic")
        return out

    def fill(self, c: _Clause, slot: str) -> None:
        """Add one optional part to `c` (see `slots`)."""
        c.filled.add(slot)
        lex = self.lex
        if slot == "time":
            c.time = self.pick(self.time_options(c))
        elif slot == "adverb":
            c.adverb = self.pick(self.adverb_options(c))
        elif slot == "location":
            c.mods.append(self.location(self.verb_lemma(c), c.subj))
        elif slot == "with":
            c.mods.append(_with_prep("с", self.person_phrase("ablt", c.subj, after_prep=True)))
        elif slot == "when":
            while self.verb_lemma(c) in _WHEN_CLASH.get((event := self.noun("event")).lemma, ()):
                pass
            event = _NP(event)
            prep, case = self.pick((("после", "gent"), ("до", "gent"), ("перед", "ablt")))
            c.mods.append(_with_prep(prep, event.form(lex, case)))
        elif slot in ("adj", "det"):
            noun = c.obj.noun  # type: ignore[union-attr]
            creation = bool({c.verb.imperf, c.verb.perf} & _CREATION)
            value = self.adjs[noun.cls].draw() if slot == "adj" else self.determiner(noun, own=not creation)
            c.obj = replace(c.obj, **{slot: value})  # type: ignore[arg-type]
        elif slot == "owner":
            owner = self.np(self.noun("person"), plural=0.1, adj=0.0, det=0.5)
            c.obj = replace(c.obj, owner=owner, det=None)  # type: ignore[arg-type]
        elif slot == "dat":
            c.dat = self.person_phrase("datv", c.subj)
        elif slot == "for":
            c.mods.append(_with_prep("для", self.person_phrase("gent", c.subj, after_prep=True)))
        elif slot == "rel":
            c.rel = self.relative(c.obj, c.verb)  # type: ignore[arg-type]
        else:
            self.fill_motion(c, slot)

    def fill_motion(self, c: _Clause, slot: str) -> None:
        lex = self.lex
        if slot == "via":
            noun = lex.nouns[self.pick(("парк", "лес", "мост", "площадь", "поле", "река", "двор", "сад"))]
            c.mods.append(_with_prep("через", self.np(noun, 0.0, 0.2, 0.0).form(lex, "accs")))
        elif slot == "without":
            noun = lex.nouns[self.pick(("зонт", "шапка", "шарф", "куртка", "ключ", "телефон", "билет", "сумка"))]
            c.mods.append(_with_prep("без", lex.noun_form(noun, "gent", "sing")))
        elif slot == "transport":
            noun = self.noun("transport")
            c.mods.append(_with_prep("на", lex.noun_form(noun, "loct", "sing")))
        elif slot == "topic":
            noun = self.noun("idea", "media", "event", "text")
            c.mods.append(_with_prep("о", self.np(noun, 0.0, 0.4, 0.3).form(lex, "loct", c.subj.pronoun)))
        elif slot == "purpose":  # ", чтобы купить хлеб"
            verb = self.pick([v for v in self.lex.verbs if v.kind == "trans" and v.perf in _PURPOSE_VERBS])
            obj = self.np(lex.nouns[self.pick(verb.objects)], plural=0.2, adj=0.2, det=0.0)
            c.rel = f", чтобы {verb.perf} {obj.form(lex, 'accs')}"

    def relative(self, obj: _NP, main: Verb | None = None) -> str:
        """E.g. ", которую купила мама" / ", который живёт в Казани": a relative clause agreeing with `obj`."""
        lex = self.lex
        if obj.noun.animate and self.p(0.6):
            person = obj.noun.cls == "person"
            verb = self.pick([v for v in lex.verbs if v.kind == "intr" and (v.animal_subject or person)])
            subj = _Subj("", "3per", obj.number, obj.gender)
            tense, aspect = self.tense_aspect(verb, ("past", "pres"))
            which = lex.adj_form("который", "nomn", obj.gender, obj.number)
            lemma = self.lemma(verb, aspect)
            place = f" {self.location(lemma)}" if self.p(0.7) else ""
            return f", {which} {self.finite(verb, tense, aspect, subj)}{place}"
        verbs = self.by_object[obj.noun.lemma]
        verb = self.pick([v for v in verbs if v != main] or verbs)
        subj = self.subject(animal_ok=verb.animal_subject)
        tense, aspect = self.tense_aspect(verb, ("past", "past", "pres"))
        which = lex.adj_form("который", "accs", obj.gender, obj.number, obj.noun.animate)
        finite = self.finite(verb, tense, aspect, subj)
        pair = f"{subj.words} {finite}" if subj.pronoun else f"{finite} {subj.words}"
        return f", {which} {pair}"

    def grow(self, clauses: list[_Clause], text_of, target: int) -> str:
        """Fill optional parts, at random, until `text_of(clauses)` has `target` words or nothing is left."""
        text = text_of(clauses)
        while len(text.split()) < target:
            i = int(self.rng.integers(len(clauses)))
            options = self.slots(clauses[i], last=i == len(clauses) - 1)
            if not options:
                options_all = [(j, s) for j, c in enumerate(clauses) for s in self.slots(c, j == len(clauses) - 1)]
                if not options_all:
                    break
                i, slot = self.pick(options_all)
            else:
                slot = self.pick(options)
            self.fill(clauses[i], slot)
            text = text_of(clauses)
        return text

    # -- sentences ----------------------------------------------------------------------------------------
    def statement(self, target: int) -> str:
        c = self.clause()
        text = self.grow([c], lambda cs: self.realize(cs[0]), target)
        return text + ("!" if self.p(0.04) else ".")

    def complex_sentence(self, target: int) -> str:
        """Two clauses: "A, потому что B", "Когда A, B", "Если A, B", "Мама сказала, что B"."""
        r = self.rng.random()
        if r < 0.2:  # reported speech
            lemma, tense = self.pick(_SPEECH)
            subj = self.subject()
            tags = {"past", *subj.past_tags()} if tense == "past" else {"pres", subj.person, subj.number}
            head = f"{subj.words} {self.lex.verb_form(lemma, _F(tags))}"
            c = self.clause()
            return self.grow([c], lambda cs: f"{head}, что {self.realize(cs[0])}", target) + "."
        if r < 0.45:  # "когда" / "если": both clauses in one time frame
            word = self.pick(("когда", "когда", "если"))
            tenses = ("futr",) if word == "если" else (self.pick(("past", "futr", "pres")),)
            a, b = self.clause(tenses=tenses), self.clause(tenses=tenses)
            b.filled.add("time")  # one time for both: "Когда ..., завтра ..." would contradict "когда"
            if word == "когда" and self.p(0.5):
                return self.grow([a, b], lambda cs: f"{self.realize(cs[0])}, когда {self.realize(cs[1])}", target) + "."
            text = self.grow([a, b], lambda cs: f"{word} {self.realize(cs[0])}, {self.realize(cs[1])}", target)
            return text + "."
        conj = self.pick(_CONNECTORS)
        a = self.clause()
        while (b := self.clause(tenses=None if conj == ", потому что " else (a.tense,))).subj.words == a.subj.words:
            pass
        return self.grow([a, b], lambda cs: f"{self.realize(cs[0])}{conj}{self.realize(cs[1])}", target) + "."

    def question(self, target: int) -> str:
        r = self.rng.random()
        if r < 0.3:  # yes/no: the statement's words with a question's intonation
            c = self.clause()
            return self.grow([c], lambda cs: self.realize(cs[0]), target) + "?"
        if r < 0.75:
            return self.wh_question(target)
        if r < 0.85:
            noun = self.noun("thing", "clothes", "text", "animal", "transport")
            number = "plur" if noun.countable and self.p(0.25) else "sing"
            whose = self.lex.adj_form("чей", "nomn", noun.gender if number == "sing" else None, number)
            return f"{whose} это {self.lex.noun_form(noun, 'nomn', number)}?"
        np_ = self.np(self.goods(), plural=0.25, adj=0.3, det=0.6)
        tense = self.pick(("pres", "pres", "past"))
        cost = self.lex.verb_form("стоить", _F({tense, "3per", np_.number} if tense == "pres" else _past(np_)))
        return f"Сколько {cost} {np_.form(self.lex, 'nomn')}?"

    def wh_question(self, target: int) -> str:
        """E.g. "Где / Когда / Почему / Куда / Что / Кого / Кто / Какую книгу ... ?"."""
        c = self.clause()
        lex, kind = self.lex, c.verb.kind
        c.filled.update({"time", "purpose", "rel", "adverb"})
        options = ["Когда", "Почему"]
        if kind != "motion":
            options.append("Где")
        else:
            options.append("Куда")
        if c.obj is not None:
            options += ["obj", "which"]
        if not c.subj.animal and c.subj.pronoun is None:
            options.append("Кто")
        word = self.pick(options)
        if word == "Где":
            c.filled.add("location")
        if word == "Почему":
            c.negated = self.p(0.4)
        if word == "Куда":
            c.dest = None
        if word == "Кто":
            c.subj = _Subj("кто", "3per", "sing", "masc")
            return _cap(self.grow([c], lambda cs: self.realize(cs[0]), target)) + "?"
        if word == "obj":
            front = "Кого" if c.obj.noun.animate else "Что"  # type: ignore[union-attr]
            c.filled.update({"adj", "det", "owner"})
            return self.grow([c], lambda cs: self.realize(cs[0], front=front, drop_obj=True), target) + "?"
        if word == "which":
            c.obj = replace(c.obj, det="какой", owner=None)  # type: ignore[arg-type]
            c.filled.update({"det", "owner"})
            text = self.grow([c], lambda cs: self.realize(cs[0], drop_obj=True), target)
            return f"{_cap(c.obj.form(lex, 'accs'))} {text}?"
        return self.grow([c], lambda cs: self.realize(cs[0], front=word), target) + "?"

    def exclamation(self, target: int) -> str:
        r = self.rng.random()
        lex = self.lex
        if r < 0.3:
            noun = self.noun("animal", "plant", "thing", "clothes", "place_v", "nature", "text", "media", "weather")
            np_ = _NP(noun, "plur" if noun.countable and self.p(0.2) else "sing", self.adjs[noun.cls].draw(), "какой")
            return _cap(np_.form(lex, "nomn")) + "!"
        if r < 0.45:
            where = self.location(None) if self.p(0.6) else self.pick(_TIME_PRESENT)
            return f"Как {self.pick(_PREDICATIVES)} {where}!"
        if r < 0.6:
            verb = self.pick([v for v in lex.verbs if v.kind == "motion" and v.perf and v.perf != "прийти"])
            plural = self.p(0.5)
            go = lex.verb_form(verb.perf, _F({"futr", "1per", "plur"}))
            dest = self.destination(verb, self.pronoun())
            return f"{'Давайте' if plural else 'Давай'} {go} {dest}!"
        if r < 0.7:
            noun = self.noun("animal", "plant", "transport", "thing")
            plural = self.p(0.5)
            np_ = _to_addressee(self.np(noun, 0.2, 0.4, 0.4))
            return f"{'Посмотрите' if plural else 'Посмотри'} на {np_.form(lex, 'accs')}!"
        return self.imperative()

    def imperative(self) -> str:
        """E.g. "Пожалуйста, закройте окно!", "Купи хлеб!", "Не забудь ключи!"."""
        lex = self.lex
        number = "plur" if self.p(0.5) else "sing"
        if self.p(0.15):
            noun = lex.nouns[self.pick(("ключ", "зонт", "билет", "шарф", "телефон", "шапка", "кошелёк", "тетрадь"))]
            np_ = _to_addressee(self.np(noun, 0.3, 0.0, 0.3))
            return f"Не {lex.verb_form('забыть', _F({'impr', 'excl', number}))} {np_.form(lex, 'accs')}!"
        verbs = [v for v in lex.verbs if v.kind == "trans" and v.perf and v.perf not in _NO_IMPERATIVE]
        verb = self.pick(verbs)
        form = lex.verb_form(verb.perf, _F({"impr", "excl", number}))
        if form is None:
            return self.imperative()
        obj = _to_addressee(self.np(lex.nouns[self.pick(verb.objects)], 0.25, 0.3, 0.3))
        obj = obj.form(lex, "accs")
        if self.p(0.35):
            return f"Пожалуйста, {form} {obj}!"
        return f"{_cap(form)} {obj}!"

    # -- descriptions -------------------------------------------------------------------------------------
    def be(self, tense: str, tags: set[str]) -> str:
        """E.g. "был" / "была" / "будет" / "будут" agreeing with `tags` (past: gender or plural; future: number)."""
        if tense == "past":
            return self.lex.verb_form("быть", _F({"past"} | tags))  # type: ignore[return-value]
        return "будут" if "plur" in tags else "будет"

    def description(self, target: int) -> str:
        r = self.rng.random()
        if r < 0.3:
            return self.copula()
        if r < 0.5:
            return self.possession()
        if r < 0.72:
            return self.existential()
        if r < 0.9:
            time = self.pick(("сегодня", "сейчас", "вчера", "завтра", "вечером", "утром", "ночью", "днём"))
            fixed = {"вчера": "past", "завтра": "futr", "сейчас": "pres"}
            tense = fixed.get(time) or self.pick(("pres", "past", "futr"))
            self.hint = tense
            where = "на улице" if self.p(0.4) else self.location(None)
            be = "" if tense == "pres" else self.be(tense, {"sing", "neut"}) + " "
            parts = [time, where] if self.p(0.6) else [where, time]
            return _cap(f"{' '.join(parts)} {be}{self.pick(_PREDICATIVES)}.")
        time = self.pick(_TIME_PAST + _TIME_FUTURE + _TIME_PRESENT)
        tense = "past" if time in _TIME_PAST else ("futr" if time in _TIME_FUTURE else "pres")
        self.hint = tense
        verb = {"past": "шёл", "pres": "идёт", "futr": "пойдёт"}[tense]
        where = f" {self.location('гулять')}" if self.p(0.4) else ""
        weather = "дождь" if time == "летом" else self.pick(("дождь", "снег"))  # no snow in summer
        return _cap(f"{time}{where} {verb} {weather}.")

    def copula(self) -> str:
        """E.g. "Этот парк очень красивый.", "Вода была холодная.", "Экзамен будет трудным."."""
        classes = ("person", "animal", "text", "thing", "clothes", "furniture", "food", "drink", "place_v", "nature",
                   "event", "idea", "media", "plant", "weather")  # fmt: skip
        noun = self.noun(*classes)
        np_ = self.np(noun, plural=0.25, adj=0.0, det=0.7)
        tense = self.pick(("pres", "pres", "past", "futr"))
        self.hint = tense
        if tense == "futr" and noun.cls not in ("weather", "event", "idea", "media", "food", "drink"):
            tense = "past"  # "экзамен будет трудным", but not "писатель будет молодым"
            self.hint = tense
        adj = self.adjs[noun.cls].draw()
        case = "ablt" if tense == "futr" or (tense == "past" and self.p(0.4)) else "nomn"
        pred = self.lex.adj_form(adj, case, np_.gender, np_.number)
        very = "очень " if self.p(0.3) else ""
        be = "" if tense == "pres" else self.be(tense, _past(np_) - {"past"}) + " "
        time = ""
        if tense != "pres" and self.p(0.4):
            time = self.pick(_TIME_PAST if tense == "past" else _TIME_FUTURE) + " "
        return _cap(f"{time}{np_.form(self.lex, 'nomn')} {be}{very}{pred}.")

    def owner_phrase(self) -> str:
        """E.g. "у меня", "у моей сестры", "у Ивана"."""
        if self.p(0.4):
            return "у " + _PRONOUN_CASES[self.pick([p[0] for p in _PRONOUNS])]["gent"]
        return _with_prep("у", self.person_phrase("gent", after_prep=True))

    def possession(self) -> str:
        """E.g. "У моей сестры есть рыжая кошка.", "У нас не было зонта.", "У брата будет новый велосипед."."""
        owner = self.owner_phrase()
        while (noun := self.noun("animal", "thing", "clothes", "furniture", "transport", "text")).lemma in _NOT_OWNED:
            pass
        np_ = self.np(noun, plural=0.2, adj=0.4, det=0.0)
        tense = self.pick(("pres", "pres", "past", "futr"))
        self.hint = tense
        if self.p(0.25):
            neg = {"pres": "нет", "past": "не было", "futr": "не будет"}[tense]
            return _cap(f"{owner} {neg} {np_.form(self.lex, 'gent')}.")
        be = "есть" if tense == "pres" else self.be(tense, _past(np_) - {"past"})
        return _cap(f"{owner} {be} {np_.form(self.lex, 'nomn')}.")

    _CONTENTS = {
        "town": "театр музей парк библиотека бассейн стадион зоопарк кафе ресторан магазин мост рынок площадь вокзал "
        "цирк университет больница",
        "green": "птица белка ёж заяц утка дерево цветок ёлка берёза дуб сосна гриб куст",
        "home": "диван кресло шкаф полка кровать ковёр зеркало лампа картина стол телевизор",
        "water": "рыба утка лебедь лодка корабль",
    }
    _CONTAINERS = {
        "town": "city город деревня посёлок",
        "green": "парк сад лес двор поле поляна остров",
        "home": "комната квартира кухня дом дача",
        "water": "река озеро море",
    }

    def existential(self) -> str:
        """E.g. "В нашем городе есть новый театр.", "В лесу было много грибов."."""
        group = self.pick(tuple(self._CONTAINERS))
        word = self.pick(self._CONTAINERS[group].split())
        place = self.noun("city") if word == "city" else self.lex.nouns[word]
        prep = PLACE_PREPOSITION.get(place.cls, "в")
        where = _with_prep(prep, self.np(place, 0.0, 0.2, 0.4 * (not place.proper)).form(self.lex, "loc2"))
        thing = self.lex.nouns[self.pick(self._CONTENTS[group].split())]
        tense = self.pick(("pres", "pres", "past", "futr"))
        self.hint = tense
        if thing.countable and self.p(0.35):
            be = {"pres": "", "past": "было ", "futr": "будет "}[tense]
            return _cap(f"{where} {be}много {self.lex.noun_form(thing, 'gent', 'plur')}.")
        np_ = self.np(thing, plural=0.2, adj=0.5, det=0.0)
        be = "есть" if tense == "pres" else self.be(tense, _past(np_) - {"past"})
        return _cap(f"{where} {be} {np_.form(self.lex, 'nomn')}.")

    # -- numbers written with digits ----------------------------------------------------------------------
    def count(self, low: int = 2, high: int = 30) -> int:
        """Mostly small counts, sometimes up to a few hundred (and every ending: 1, 2-4, 5-20, 21...)."""
        if self.p(0.2):
            return int(self.rng.integers(21, 400))
        return int(self.rng.integers(low, high + 1))

    def between(self, low: int, high: int) -> int:
        return int(self.rng.integers(low, high + 1))

    def ordinal(self, n: int, noun: Noun, case: str, number: str = "sing") -> str:
        """E.g. "5-й", "3-го", "21-м": the digits and the ending of the ordinal agreeing with `noun` in `case`."""
        from num2words import num2words

        word = num2words(n, lang="ru", to="ordinal").split()[-1]
        form = self.lex.adj_form(word, "loct" if case == "loc2" else case, noun.gender, number, noun.animate)
        return f"{n}-{ordinal_suffix(form)}"

    def clock(self) -> str:
        return f"{int(self.rng.integers(6, 24))}:{self.pick((0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55)):02d}"

    def price(self) -> int:
        r = self.rng.random()
        if r < 0.3:
            return int(self.rng.integers(2, 100))
        if r < 0.75:
            return int(self.rng.integers(10, 100)) * 10 + (5 if self.p(0.1) else 0)
        return int(self.rng.integers(1, 60)) * 100

    def n_count(self, target: int) -> str:
        """E.g. "Мама купила 3 яблока.", "Я прочитаю 21 книгу."."""
        while True:
            verb = self.verbs["trans"].draw()
            nouns = [self.lex.nouns[x] for x in verb.objects]
            nouns = [n for n in nouns if n.countable and not n.animate]
            if nouns and verb.perf in _COUNT_VERBS:
                break
        noun, n = self.pick(nouns), self.count()
        subj = self.subject()
        c = _Clause(subj, verb, self.pick(("past", "past", "futr")), "perf")
        c.obj_text = f"{n} {count_form(self.lex, noun, n, 'accs')}"
        c.filled.update({"rel", "adverb"})
        return self.grow([c], lambda cs: self.realize(cs[0]), target) + "."

    def n_have(self, target: int) -> str:
        """E.g. "У бабушки 3 кошки.", "У нас было 5 билетов."."""
        noun = self.noun("animal", "thing", "clothes", "text", "plant")
        if not noun.countable:
            return self.n_have(target)
        n = self.count()
        be = self.pick(("", "", "есть ", "было ", "будет "))
        self.hint = {"было ": "past", "будет ": "futr"}.get(be, "pres")
        return _cap(f"{self.owner_phrase()} {be}{n} {count_form(self.lex, noun, n)}.")

    def n_year(self, target: int) -> str:
        """E.g. "Этот мост построили в 1987 году.", "Анна родилась в 1995 году.", "<clause> в 2003 году."."""
        year = int(self.rng.integers(1950, 2025)) if self.p(0.8) else int(self.rng.integers(1800, 1950))
        when = f"в {year} году"
        r = self.rng.random()
        if r < 0.25:
            building = self.np(self.lex.nouns[self.pick(("мост", "театр", "музей", "дом", "школа", "стадион",
                               "библиотека", "гостиница", "больница"))], 0.0, 0.0, 0.8)  # fmt: skip
            return _cap(f"{building.form(self.lex, 'accs')} построили {when}.")
        if r < 0.45:
            who = self.subject()
            if who.number == "plur":  # one person is born in a year
                who = self.pronoun() if self.p(0.3) else _Subj(*self.name_subject())
            born = self.lex.verb_form("родиться", _F({"past"} | who.past_tags()))
            return _cap(f"{who.words} {born} {when}.")
        c = self.clause(tenses=("past",))
        c.filled.update({"time", "rel", "purpose"})
        return self.grow([c], lambda cs: f"{self.realize(cs[0])} {when}", target) + "."

    def n_clock(self, target: int) -> str:
        """E.g. "Концерт начнётся в 19:30.", "Поезд отправляется в 7:45.", "Я встаю в 6:30."."""
        at = f"в {self.clock()}"
        r, lex = self.rng.random(), self.lex
        if r < 0.35:
            np_ = self.np(self.noun("event"), 0.0, 0.2, 0.3)
            lemma = self.pick(("начинаться", "начаться", "заканчиваться", "закончиться"))
            tense = "pres" if lemma in ("начинаться", "заканчиваться") else self.pick(("past", "futr"))
            self.hint = tense
            tags = _past(np_) if tense == "past" else {tense, "3per", "sing"}
            return _cap(f"{np_.form(lex, 'nomn')} {lex.verb_form(lemma, _F(tags))} {at}.")
        if r < 0.65:
            np_ = self.np(self.noun("transport"), 0.0, 0.2, 0.2)
            lemma = self.pick(("отправляться", "прибывать", "приходить", "отправиться", "прибыть", "прийти"))
            tense = "futr" if lemma in ("отправиться", "прибыть", "прийти") else "pres"
            self.hint = tense
            return _cap(f"{np_.form(lex, 'nomn')} {lex.verb_form(lemma, _F({tense, '3per', 'sing'}))} {at}.")
        subj = self.subject()
        lemma, tense = self.pick((("вставать", "pres"), ("встать", "futr"), ("просыпаться", "pres"),
                                  ("проснуться", "past"), ("вернуться", "futr"), ("прийти", "past")))  # fmt: skip
        self.hint = tense
        tags = {"past"} | subj.past_tags() if tense == "past" else {tense, subj.person, subj.number}
        home = " домой" if lemma in ("вернуться", "прийти") else ""
        return _cap(f"{subj.words} {lex.verb_form(lemma, _F(tags))}{home} {at}.")

    def n_price(self, target: int) -> str:
        """E.g. "Эта книга стоит 350 рублей.", "Билет в театр стоил 500 рублей.", "Я заплатил 90 рублей за чай."."""
        lex, n = self.lex, self.price()
        rub = f"{n} {count_form(lex, lex.nouns['рубль'], n)}"
        r = self.rng.random()
        if r < 0.5:
            np_ = self.np(self.goods(), 0.2, 0.4, 0.5)
            tense = self.pick(("pres", "pres", "past"))
            self.hint = tense
            tags = _past(np_) if tense == "past" else {"pres", "3per", np_.number}
            return _cap(f"{np_.form(lex, 'nomn')} {lex.verb_form('стоить', _F(tags))} {rub}.")
        if r < 0.7:
            place = self.lex.nouns[self.pick(("театр", "музей", "кино", "цирк", "зоопарк", "бассейн"))]
            cost = self.pick(("стоит", "стоил"))
            self.hint = "pres" if cost == "стоит" else "past"
            return f"Билет в {lex.noun_form(place, 'accs', 'sing')} {cost} {rub}."
        subj = self.subject()
        paid = lex.verb_form("заплатить", _F({"past"} | subj.past_tags()))
        np_ = self.np(self.goods(), 0.2, 0.3, 0.3)
        return _cap(f"{subj.words} {paid} {rub} за {np_.form(lex, 'accs', subj.pronoun)}.")

    def n_ordinal(self, target: int) -> str:
        """E.g. "Мы живём на 5-м этаже.", "Откройте книгу на 12-й странице.", "Она заняла 2-е место."."""
        lex, r = self.lex, self.rng.random()
        subj = self.subject()
        tense = self.pick(("pres", "past"))
        self.hint = tense

        def verb(lemma: str, t: str = tense) -> str:
            tags = {"past"} | subj.past_tags() if t == "past" else {t, subj.person, subj.number}
            return lex.verb_form(lemma, _F(tags))  # type: ignore[return-value]

        if r < 0.25:
            floor = lex.nouns["этаж"]
            return _cap(f"{subj.words} {verb('жить')} на {self.ordinal(self.between(1, 25), floor, 'loct')} этаже.")
        if r < 0.4:
            row = lex.nouns["ряд"]
            return _cap(f"{subj.words} {verb('сидеть')} в {self.ordinal(self.between(1, 30), row, 'loct')} ряду.")
        if r < 0.55:
            page = lex.nouns["страница"]
            n = int(self.rng.integers(2, 300))
            imp = self.pick(("Откройте", "Открой"))
            self.hint = "impr"  # a request: `extend` joins no statement to it
            return f"{imp} {self.pick(('книгу', 'учебник', 'тетрадь'))} на {self.ordinal(n, page, 'loct')} странице."
        if r < 0.7:
            chapter = lex.nouns["глава"]
            n = self.between(1, 30)
            return _cap(f"{subj.words} {verb('прочитать', 'past')} {self.ordinal(n, chapter, 'accs')} главу.")
        if r < 0.8:
            place = lex.nouns["место"]
            n = self.between(1, 10)
            return _cap(f"{subj.words} {verb('занять', 'past')} {self.ordinal(n, place, 'accs')} место.")
        if r < 0.9:
            grade = self.ordinal(self.between(1, 11), lex.nouns["класс"], "loct")
            return _cap(f"{subj.words} {verb('учиться', 'pres')} в {grade} классе.")
        track = lex.nouns["путь"]
        train = self.pick(("Поезд", "Электричка", "Наш поезд"))
        go = "отправляется" if train != "Электричка" else "отправляется"
        return f"{train} {go} с {self.ordinal(self.between(1, 12), track, 'gent')} пути."

    def n_age(self, target: int) -> str:
        """E.g. "Моему брату 12 лет.", "Бабушке скоро будет 80 лет."."""
        n = int(self.rng.integers(2, 100))
        who = self.person_phrase("datv", plural=0.0)  # one person's age
        soon = self.pick(("", "", "уже ", "скоро будет ", "в прошлом году было "))
        self.hint = {"скоро будет ": "futr", "в прошлом году было ": "past"}.get(soon, "pres")
        return _cap(f"{who} {soon}{n} {count_form(self.lex, self.lex.nouns['год'], n)}.")

    def n_duration(self, target: int) -> str:
        """E.g. "Мы ждали 20 минут.", "Она гуляла в парке 2 часа."."""
        unit = self.lex.nouns[self.pick(("минута", "минута", "час", "день", "неделя"))]
        n = self.between(2, 59) if unit.lemma == "минута" else self.between(1, 12)
        verb = self.pick([v for v in self.lex.verbs if v.imperf in _DURATION_VERBS])
        c = _Clause(self.subject(), verb, "past", "impf")
        c.filled.update({"adverb", "rel", "with", "time", "when"})
        text = self.grow([c], lambda cs: self.realize(cs[0]), max(target - 2, 2))
        return f"{text} {n} {count_form(self.lex, unit, n, 'accs')}."

    def n_distance(self, target: int) -> str:
        """E.g. "До вокзала 3 километра."."""
        while (place := self.noun("place_v", "place_na", "nature")).lemma in _INDOORS:  # not "до чердака"
            pass
        n = self.count(1, 50) if self.p(0.7) else int(self.rng.integers(2, 10)) * 100
        unit = self.lex.nouns[self.pick(("километр", "километр", "метр"))]
        where = self.np(place, 0.0, 0.0, 0.3).form(self.lex, "gent")
        return f"До {where} {n} {count_form(self.lex, unit, n)}."

    # -- the whole sentence -------------------------------------------------------------------------------
    def sentence(self, target: int) -> str:
        return _cap(self.body(target))

    def extend(self, text: str, target: int) -> str:
        """A short fixed-form statement ("Концерт начнётся в 19:30.") joined to a clause when the target length
        asks for more: "Концерт начнётся в 19:30, а мы пойдём в парк."."""
        n = len(text.split())
        if not text.endswith(".") or n + 3 > target or self.hint == "impr":
            return text
        conj = self.pick((", а ", ", но ", ", и "))  # no "потому что": a price is nobody's reason
        c = self.clause(tenses=(self.hint,) if self.hint else None)
        return self.grow([c], lambda cs: f"{text[:-1]}{conj}{self.realize(cs[0])}", target) + "."

    def body(self, target: int) -> str:
        self.hint = None  # the tense of a fixed-form statement, for the clause `extend` may join to it
        if self.p(DIGIT_SHARE):
            kind = self.pick(_NUMBER_KINDS)
            text = getattr(self, f"n_{kind}")(target)
            return text if kind in ("count", "year", "duration") else self.extend(text, target)
        weights = (0.42, 0.14, 0.16, 0.1, 0.18) if target < 10 else (0.35, 0.4, 0.13, 0.02, 0.1)
        kind = ("statement", "complex", "question", "exclamation", "description")[
            int(self.rng.choice(5, p=np.asarray(weights) / sum(weights)))
        ]
        if kind == "statement":
            return self.statement(target)
        if kind == "complex":
            return _cap(self.complex_sentence(target))
        if kind == "question":
            return _cap(self.question(target))
        if kind == "exclamation":
            return self.exclamation(target)
        return self.extend(self.description(target), target)


def generate_sentences_ru(n: int, seed: int, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> list[str]:
    """`n` distinct Russian sentences of `min_words..max_words` whitespace-separated tokens.

    Deterministic in `seed`, and prefix-stable: `generate_sentences_ru(n, s)` is the first n of
    `generate_sentences_ru(n + k, s)`. About `DIGIT_SHARE` of them carry a number written with digits ("5 книг",
    "в 1987 году", "в 10:30", "150 рублей", "на 5-м этаже") for the text cleaner to expand; ё is spelled out.

    >>> s = generate_sentences_ru(20, seed=0)
    >>> len(s) == len(set(s)) == 20 and s == generate_sentences_ru(30, seed=0)[:20]
    True
    """
    rng = np.random.default_rng(seed)
    maker = _Maker(rng)
    too_small = f"no sentence of {min_words}..{max_words} words (try max_words >= 6)"
    return distinct_sentences(n, rng, maker.sentence, min_words, max_words, too_small)
