"""The Russian demo generator's vocabulary: hand-picked lemmas, inflected with pymorphy3.

The lemma lists are written here (common, neutral words: safe to listen to); `pymorphy3` (with its Russian
dictionary, `pymorphy3-dicts-ru`) supplies every inflected form. Nouns are grouped by meaning, so verbs take
objects that make sense ("читать книгу", not "читать реку") and adjectives fit their nouns.

Noun entry syntax in the lists: `лес@` takes the second locative ("в лесу"), `молоко!` has no plural here
(mass nouns), `стул/стулья` names the plural that picks the right paradigm where the dictionary has two.

    >>> lex = russian_lexicon()
    >>> lex.noun_form(lex.nouns["книга"], "accs", "sing")
    'книгу'
    >>> lex.adj_form("зелёный", "nomn", "femn", "sing")
    'зелёная'
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = ["FORM_OVERRIDES", "NOUN_CLASSES", "Noun", "RussianLexicon", "Verb", "morph_analyzer", "russian_lexicon"]

# Noun classes (semantic groups); a noun belongs to exactly one. Places say which preposition they take
# ("в парке" / "на вокзале"), for location (locative) and direction (accusative) alike.
NOUN_CLASSES: dict[str, str] = {
    "person": """
        мама папа брат сестра бабушка дедушка сын дочь друг подруга сосед соседка учитель учительница врач
        студент студентка инженер повар водитель художник музыкант почтальон продавец ребёнок девочка мальчик
        гость директор библиотекарь садовник пилот школьник школьница внук внучка тётя дядя певица писатель
        фотограф официант строитель фермер рыбак турист пассажир спортсмен тренер профессор журналист артист
        актёр актриса капитан архитектор программист секретарь медсестра кассир сторож лётчик пекарь дворник
        экскурсовод кондуктор плотник маляр электрик механик космонавт геолог ветеринар племянник
        племянница одноклассник одноклассница художница балерина скрипач пианист
    """,
    "animal": """
        кошка собака кот птица лошадь корова заяц медведь лиса белка ёж утка гусь рыба черепаха попугай хомяк
        щенок котёнок воробей сова лебедь коза овца курица петух голубь кролик мышь слон жираф обезьяна дельфин
        пингвин бабочка пчела лягушка олень верблюд тигр лев/львы зебра енот тюлень морж кит краб жук стрекоза
        муравей гусеница улитка сорока ворона чайка аист журавль павлин страус бобёр барсук лось ящерица
    """,
    "text": """
        книга газета журнал письмо открытка записка рассказ статья сказка стихотворение сообщение история
        словарь учебник тетрадь
    """,
    "thing": """
        лампа чашка тарелка ложка вилка ключ сумка рюкзак телефон зонт карандаш ручка фотография картина подарок
        игрушка мяч коробка корзина бутылка зеркало подушка одеяло билет конверт альбом карта календарь кастрюля
        чайник стакан свеча букет кошелёк ваза кружка блокнот фонарик радио! полотенце кукла флаг глобус линейка
        чемодан посылка банка гитара скрипка барабан шар фломастер кисточка пуговица иголка кольцо браслет
        будильник рамка ведро лопата лейка мешок верёвка пакет салфетка скатерть термос фотоаппарат батарейка
        лампочка марка монета значок
    """,
    "clothes": """
        шапка шарф куртка пальто платье рубашка свитер костюм юбка перчатка/перчатки носок/носки ботинок/ботинки
        сапог/сапоги кепка пиджак варежка/варежки халат майка галстук жилет сарафан пижама тапочка/тапочки
    """,
    "furniture": """
        стол стул/стулья диван кресло шкаф@ полка кровать ковёр холодильник телевизор компьютер пианино окно
        дверь забор крыша лестница плита
    """,
    "food": """
        яблоко груша апельсин банан лимон помидор огурец пирог торт булка конфета сыр! суп! каша! хлеб! морковь!
        картошка! печенье! мороженое! салат! бутерброд пирожок блин котлета арбуз дыня виноград! малина!
        клубника! слива персик орех яйцо омлет! сосиска колбаса! ватрушка вафля пряник кекс редиска! капуста!
        тыква кабачок баклажан мандарин абрикос гранат черника! смородина! вишня черешня! мёд! варенье! творог!
        йогурт
    """,
    "drink": "чай! кофе! сок! молоко! вода! компот! лимонад! какао!",
    # "в" + locative / accusative
    "place_v": """
        парк лес@ сад@ магазин школа библиотека музей театр кино больница аптека банк кафе ресторан гостиница
        университет офис класс деревня город зоопарк цирк бассейн посёлок поликлиника квартира комната
        институт кинотеатр двор@ порт@ аэропорт@ дом гараж сарай подъезд кабинет зал коридор планетарий пекарня
        гимназия лицей колледж
    """,
    # "на" + locative / accusative
    "place_na": """
        почта вокзал станция рынок площадь улица стадион дача остров мост@ берег@ поляна остановка каток фабрика
        завод ферма кухня балкон пляж стоянка окраина опушка лужайка пристань склад чердак веранда перрон причал
    """,
    "nature": "река озеро море гора поле пруд@ луг@ холм",  # "на реке", "на озере", "на пруду", "на лугу"
    "event": """
        урок концерт спектакль праздник встреча экзамен обед ужин завтрак экскурсия прогулка лекция выставка
        ярмарка тренировка репетиция матч
    """,
    "idea": "задача вопрос ответ идея план правило слово новость адрес рецепт загадка",
    "media": "фильм песня музыка! мультфильм передача сериал",
    "transport": "автобус поезд трамвай троллейбус такси самолёт корабль электричка машина велосипед лодка",
    "plant": "дерево/деревья цветок/цветы куст роза тюльпан ромашка ёлка берёза дуб клён сосна яблоня гриб",
    "weather": "погода! день утро вечер",
    # Units for sentences with numbers ("на 5-м этаже", "150 рублей"); never drawn as ordinary nouns.
    "measure": "этаж страница глава ряд@ место минута час неделя километр метр рубль год@ путь",
}

# Forms the dictionary lists second: its paradigms keep variants together and inflect to the first, "цветки"
# (florets) before "цветы" (flowers), "учители" (mentors) before "учителя" (school teachers), the bookish
# "свитеры" before the everyday "свитера".
FORM_OVERRIDES: dict[tuple[str, str], dict[str, str]] = {
    ("цветок", "plur"): {
        "nomn": "цветы", "gent": "цветов", "datv": "цветам", "accs": "цветы", "ablt": "цветами", "loct": "цветах",
    },
    ("учитель", "plur"): {"nomn": "учителя"},
    ("свитер", "plur"): {"nomn": "свитера", "accs": "свитера"},
}  # fmt: skip

# Classes whose nouns are places: the preposition they take for "where" and "where to".
PLACE_PREPOSITION = {"place_v": "в", "place_na": "на", "nature": "на", "event": "на"}

# Adjectives by the noun class they describe (all qualitative, all neutral).
ADJECTIVES: dict[str, str] = {
    "person": "добрый весёлый молодой умный вежливый строгий новый старый знакомый известный спокойный серьёзный "
    "смелый внимательный честный скромный ласковый трудолюбивый",
    "animal": "маленький большой пушистый рыжий серый белый чёрный смешной весёлый ленивый быстрый спокойный "
    "огромный крошечный смелый ласковый",
    "text": "интересный новый старый длинный короткий смешной любимый",
    "thing": "новый старый красный синий зелёный жёлтый белый большой маленький тяжёлый лёгкий красивый дорогой "
    "яркий чистый стеклянный железный бумажный старинный круглый мягкий огромный крошечный",
    "clothes": "новый тёплый красный синий зелёный белый чёрный красивый лёгкий любимый старый шерстяной кожаный "
    "летний зимний яркий чистый",
    "furniture": "новый старый большой маленький удобный деревянный красивый белый",
    "food": "вкусный свежий сладкий большой домашний спелый кислый солёный ароматный сочный",
    "drink": "горячий холодный вкусный",
    "place_v": "большой маленький новый старый красивый тихий уютный знакомый просторный светлый тёмный "
    "современный старинный чистый",
    "place_na": "большой новый старый красивый тихий шумный",
    "nature": "красивый тихий большой далёкий знакомый глубокий широкий",
    "event": "интересный весёлый длинный важный последний утренний вечерний летний",
    "idea": "новый простой сложный трудный важный интересный хороший",
    "media": "новый интересный весёлый старый смешной любимый",
    "transport": "новый старый большой красный синий последний",
    "plant": "высокий маленький зелёный старый молодой красивый огромный",
    "weather": "хороший тёплый холодный солнечный тихий чудесный",
}

# Verbs: (imperfective, perfective, direct objects). Objects are noun classes (`:class`) and single lemmas;
# "-" marks a missing aspect. Subjects are people; `ANIMAL_SUBJECT_VERBS` may also have animals.
TRANSITIVE_VERBS: tuple[tuple[str, str, str], ...] = (
    ("читать", "прочитать", ":text"),
    ("писать", "написать", "письмо открытка записка рассказ статья сказка стихотворение сообщение песня ответ"),
    ("покупать", "купить", ":thing :clothes :furniture :food :text"),
    ("продавать", "продать", ":thing :furniture :transport"),
    ("искать", "-", ":thing :clothes :animal :text"),
    ("-", "найти", ":thing :clothes :animal"),
    ("видеть", "увидеть", ":animal :person :transport :plant :thing"),
    ("брать", "взять", ":thing :text :food"),
    ("приносить", "принести", ":thing :text :food :drink"),
    ("открывать", "открыть", "окно дверь коробка книга бутылка банка шкаф сумка конверт посылка чемодан рюкзак"),
    ("закрывать", "закрыть", "окно дверь коробка книга бутылка банка шкаф сумка чемодан рюкзак холодильник"),
    ("мыть", "помыть", "окно чашка тарелка ложка вилка стакан машина яблоко кастрюля чайник кружка велосипед"),
    ("рисовать", "нарисовать", ":animal :plant :transport дом мост море река озеро гора лампа ваза"),
    ("готовить", "приготовить", "суп каша обед ужин завтрак пирог торт чай кофе омлет салат котлета блин"),
    ("есть", "съесть", ":food"),
    ("пить", "выпить", ":drink"),
    ("любить", "-", ":animal :food :drink :media :text :person"),
    ("слушать", "послушать", "музыка песня сказка история лекция концерт радио рассказ"),
    ("смотреть", "посмотреть", "фильм спектакль концерт мультфильм передача сериал матч фотография"),
    ("строить", "построить", "дом мост школа театр музей больница стадион библиотека дача забор гостиница"),
    ("чинить", "починить", "велосипед машина стул стол лампа телефон компьютер крыша забор телевизор лодка"),
    ("дарить", "подарить", ":thing книга открытка альбом словарь"),
    ("показывать", "показать", ":thing :text :animal"),
    ("ждать", "подождать", ":person :transport"),
    ("встречать", "встретить", ":person"),
    ("звать", "позвать", ":person"),
    ("приглашать", "пригласить", ":person"),
    ("учить", "выучить", "стихотворение песня урок правило слово"),
    ("кормить", "покормить", ":animal"),
    ("терять", "потерять", ":thing"),
    ("убирать", "убрать", "комната кухня квартира игрушка"),
    ("заказывать", "заказать", ":food :drink билет такси"),
    ("получать", "получить", "письмо посылка подарок открытка билет сообщение газета"),
    ("отправлять", "отправить", "письмо посылка открытка сообщение подарок"),
    ("помнить", "-", ":person :idea"),
    ("забывать", "забыть", "ключ зонт сумка телефон адрес правило слово билет кошелёк шарф перчатка"),
    ("понимать", "понять", "вопрос задача правило идея ответ слово"),
    ("решать", "решить", "задача вопрос загадка"),
    ("обсуждать", "обсудить", ":idea :media :event"),
    ("фотографировать", "сфотографировать", ":animal :person :plant мост река озеро гора"),
    ("надевать", "надеть", ":clothes"),
    ("стирать", "постирать", ":clothes"),
    ("выбирать", "выбрать", ":thing :clothes :text :media"),
    ("включать", "включить", "лампа телевизор компьютер радио музыка чайник фонарик"),
    ("будить", "разбудить", ":person"),
    ("слышать", "услышать", ":animal песня музыка"),
    ("рассказывать", "рассказать", "сказка история новость загадка"),
    ("переводить", "перевести", "письмо статья книга песня слово"),
    ("проверять", "проверить", "тетрадь ответ задача письмо билет адрес"),
    ("поливать", "полить", ":plant"),
    ("навещать", "навестить", ":person"),
    ("благодарить", "поблагодарить", ":person"),
    ("ловить", "поймать", "мяч рыба бабочка"),
)

# Transitive verbs whose subject may also be an animal ("кошка нашла мяч").
ANIMAL_SUBJECT_VERBS = frozenset(
    "видеть увидеть искать найти ждать подождать любить слышать услышать есть съесть пить выпить ловить поймать".split()
)

# Verbs that take a recipient in the dative ("подарил маме книгу").
DATIVE_VERBS = frozenset(
    "дарить подарить показывать показать приносить принести покупать купить рассказывать рассказать писать "
    "написать отправлять отправить".split()
)

# Intransitive verbs of activity: (imperfective, perfective); a location may follow ("в парке").
INTRANSITIVE_VERBS: tuple[tuple[str, str], ...] = (
    ("гулять", "погулять"), ("работать", "поработать"), ("жить", "-"), ("отдыхать", "отдохнуть"),
    ("играть", "поиграть"), ("петь", "спеть"), ("танцевать", "потанцевать"), ("сидеть", "посидеть"),
    ("спать", "поспать"), ("обедать", "пообедать"), ("ужинать", "поужинать"), ("завтракать", "позавтракать"),
    ("учиться", "-"), ("плавать", "поплавать"), ("читать", "почитать"), ("рисовать", "порисовать"),
    ("отдыхать", "отдохнуть"), ("бегать", "побегать"), ("кататься", "покататься"), ("ждать", "подождать"),
    ("разговаривать", "поговорить"), ("смеяться", "засмеяться"), ("улыбаться", "улыбнуться"),
    ("фотографировать", "-"), ("готовить", "-"),
)  # fmt: skip
ANIMAL_INTRANSITIVE = frozenset(
    "гулять погулять жить спать поспать сидеть посидеть играть поиграть плавать поплавать бегать побегать ждать "
    "подождать".split()
)

# Verbs of motion: (imperfective, perfective); a destination follows ("в парк", "к бабушке", "домой").
MOTION_VERBS: tuple[tuple[str, str], ...] = (
    ("идти", "пойти"), ("ехать", "поехать"), ("ходить", "-"), ("ездить", "съездить"),
    ("приходить", "прийти"), ("приезжать", "приехать"), ("возвращаться", "вернуться"), ("бежать", "побежать"),
    ("спешить", "-"), ("заходить", "зайти"), ("отправляться", "отправиться"),
)  # fmt: skip
ANIMAL_MOTION = frozenset("идти пойти бежать побежать возвращаться вернуться прийти приходить".split())

# Proper names (nominative); the dictionary's `Name` / `Geox` parses inflect them.
MALE_NAMES = """
    Иван Пётр Алексей Сергей Андрей Михаил Дмитрий Николай Павел Борис Антон Максим Егор Олег Фёдор Степан Артём
    Роман Виктор Кирилл
"""
FEMALE_NAMES = """
    Анна Мария Ольга Елена Татьяна Ирина Наталья Светлана Нина Дарья Ксения Полина Алёна Юлия Марина Галина Софья
    Людмила
"""
CITIES = """
    Москва Казань Самара Тверь Калуга Омск Томск Псков Рязань Тула Пермь Уфа Иркутск Мурманск Смоленск Новгород
    Ярославль Воронеж Саратов Курск Кострома Вологда Архангельск Екатеринбург Новосибирск Красноярск Хабаровск
    Владивосток Астрахань Суздаль Петербург Сочи
"""


@dataclass(frozen=True)
class Noun:
    """A common noun (or a name or a city) with what the generator needs to inflect and place it."""

    lemma: str
    cls: str  # a NOUN_CLASSES key, or "name" / "city"
    gender: str  # masc / femn / neut
    animate: bool
    countable: bool  # has a plural the generator may use
    loc2: bool  # location in the second locative ("в лесу")
    proper: bool = False


@dataclass(frozen=True)
class Verb:
    """An aspect pair: either lemma may be None (no such aspect in the lists)."""

    imperf: str | None
    perf: str | None
    kind: str  # "trans", "intr" or "motion"
    objects: tuple[str, ...] = ()  # noun lemmas it takes as a direct object (transitive verbs)
    animal_subject: bool = False
    dative: bool = False


@functools.cache
def morph_analyzer():
    """The process-wide pymorphy3 analyzer for Russian (loading it takes a fraction of a second)."""
    import pymorphy3

    return pymorphy3.MorphAnalyzer(lang="ru")


def _entry(raw: str) -> tuple[str, str | None, bool, bool]:
    """`лес@` / `молоко!` / `стул/стулья` -> (lemma, plural hint, singular only, second locative)."""
    sing_only, loc2 = raw.endswith("!"), raw.endswith("@")
    raw = raw.rstrip("!@")
    lemma, _, plural = raw.partition("/")
    return lemma, plural or None, sing_only, loc2


class RussianLexicon:
    """The word lists, checked against the dictionary and inflected on demand (results cached).

    Building it raises ValueError naming any lemma the dictionary does not know as written (a missing ё
    included), so a typo in the lists fails loudly instead of producing a wrong form.
    """

    def __init__(self) -> None:
        self.morph = morph_analyzer()
        self._parses: dict[tuple[str, str], object] = {}
        self.nouns: dict[str, Noun] = {}
        for cls, words in NOUN_CLASSES.items():
            for raw in words.split():
                self._add_noun(raw, cls)
        for cls, words in (("name", MALE_NAMES + " " + FEMALE_NAMES), ("city", CITIES)):
            for raw in words.split():
                self._add_noun(raw, cls)
        self.adjectives = {cls: tuple(words.split()) for cls, words in ADJECTIVES.items()}
        for adj in {a for words in self.adjectives.values() for a in words}:
            self._adj_parse(adj)
        self.verbs = self._build_verbs()

    # -- loading ------------------------------------------------------------------------------------------
    def _add_noun(self, raw: str, cls: str) -> None:
        lemma, plural, sing_only, loc2 = _entry(raw)
        proper = cls in ("name", "city")
        flag = {"name": "Name", "city": "Geox"}.get(cls)
        key = lemma.lower()
        cands = [
            p
            for p in self.morph.parse(key)
            if p.tag.POS == "NOUN" and p.normal_form == key and (flag is None or flag in p.tag)
        ]
        cands = [p for p in cands if {"sing", "nomn"} <= p.tag.grammemes] or cands
        # Animacy decides the accusative; the dictionary also has e.g. an animate "роза" (a name).
        animacy = "anim" if cls in ("person", "animal", "name") else "inan"
        cands = [p for p in cands if animacy in p.tag] or cands
        if plural and (key, "plur") not in FORM_OVERRIDES:
            cands = [p for p in cands if (p.inflect({"plur", "nomn"}) or p).word == plural]
        if not cands:
            raise ValueError(f"russian vocabulary: pymorphy3 does not know the noun {raw!r} ({cls})")
        p = cands[0]
        self._parses[("n", key)] = p
        gender = p.tag.gender or "masc"
        countable = not sing_only and not proper and p.inflect({"plur", "nomn"}) is not None
        self.nouns[key] = Noun(lemma, cls, gender, p.tag.animacy == "anim", countable, loc2, proper)

    def _adj_parse(self, lemma: str):
        key = ("a", lemma)
        if key not in self._parses:
            cands = [p for p in self.morph.parse(lemma) if p.tag.POS == "ADJF" and p.normal_form == lemma]
            if not cands:
                raise ValueError(f"russian vocabulary: pymorphy3 does not know the adjective {lemma!r}")
            self._parses[key] = cands[0]
        return self._parses[key]

    def _verb_parse(self, lemma: str, aspect: str | None = None):
        """The infinitive's parse; `aspect` ("impf" / "perf") picks among homonyms when it is first looked up
        ("переводить" is also listed as a perfective, with no present tense)."""
        key = ("v", lemma)
        if key not in self._parses:
            cands = [p for p in self.morph.parse(lemma) if p.tag.POS == "INFN" and p.normal_form == lemma]
            cands = [p for p in cands if aspect is None or aspect in p.tag] or cands
            cands.sort(key=lambda p: "tran" not in p.tag)  # "есть" (to eat) before "есть" (there is)
            if not cands:
                raise ValueError(f"russian vocabulary: pymorphy3 does not know the verb {lemma!r}")
            self._parses[key] = cands[0]
        return self._parses[key]

    def _objects(self, spec: str) -> tuple[str, ...]:
        out: list[str] = []
        for item in spec.split():
            if item.startswith(":"):
                out += [n.lemma for n in self.nouns.values() if n.cls == item[1:]]
            elif item in self.nouns:
                out.append(item)
            else:
                raise ValueError(f"russian vocabulary: verb object {item!r} is not in the noun lists")
        return tuple(dict.fromkeys(out))

    def _build_verbs(self) -> tuple[Verb, ...]:
        verbs: list[Verb] = []

        def pair(imperf: str, perf: str) -> tuple[str | None, str | None]:
            for lemma, aspect in ((imperf, "impf"), (perf, "perf")):
                if lemma != "-":
                    self._verb_parse(lemma, aspect)
            return (None if imperf == "-" else imperf), (None if perf == "-" else perf)

        for imperf, perf, objects in TRANSITIVE_VERBS:
            i, p = pair(imperf, perf)
            animal, dative = bool({i, p} & ANIMAL_SUBJECT_VERBS), bool({i, p} & DATIVE_VERBS)
            verbs.append(Verb(i, p, "trans", self._objects(objects), animal, dative))
        for imperf, perf in INTRANSITIVE_VERBS:
            i, p = pair(imperf, perf)
            verbs.append(Verb(i, p, "intr", animal_subject=bool({i, p} & ANIMAL_INTRANSITIVE)))
        for imperf, perf in MOTION_VERBS:
            i, p = pair(imperf, perf)
            verbs.append(Verb(i, p, "motion", animal_subject=bool({i, p} & ANIMAL_MOTION)))
        return tuple(dict.fromkeys(verbs))

    # -- inflection ---------------------------------------------------------------------------------------
    @functools.cache  # noqa: B019  (one lexicon per process, see russian_lexicon)
    def noun_form(self, noun: Noun, case: str, number: str) -> str:
        """`noun` in `case` ("nomn", "gent", "datv", "accs", "ablt", "loct", "loc2") and `number`."""
        p = self._parses[("n", noun.lemma.lower())]
        if case == "loc2" and not noun.loc2:
            case = "loct"
        override = FORM_OVERRIDES.get((noun.lemma, number), {}).get("loct" if case == "loc2" else case)
        if override:
            return override
        form = p.inflect({case, number}) or (p.inflect({"loct", number}) if case == "loc2" else None)
        if form is None:
            raise ValueError(f"russian vocabulary: no {case} {number} form of {noun.lemma!r}")
        word = form.word
        return word[0].upper() + word[1:] if noun.proper else word

    @functools.cache  # noqa: B019
    def adj_form(self, lemma: str, case: str, gender: str | None, number: str, animate: bool = False) -> str:
        """An adjective (or a pronoun-adjective such as "этот", "мой", "который") agreeing with a noun."""
        p = self._adj_parse(lemma)
        tags = {case, number} | ({gender} if number == "sing" and gender else set())
        if case == "accs" and (number == "plur" or gender == "masc"):
            tags.add("anim" if animate else "inan")
        form = p.inflect(tags)
        if form is None:
            raise ValueError(f"russian vocabulary: no form {sorted(tags)} of {lemma!r}")
        return form.word

    @functools.cache  # noqa: B019
    def verb_form(self, lemma: str, grammemes: frozenset[str]) -> str | None:
        """A finite form ({"past", "femn", "sing"}, {"pres", "3per", "plur"}, {"impr", "excl", "sing"}...);
        None where the verb has no such form (a perfective has no present)."""
        form = self._verb_parse(lemma).inflect(set(grammemes))
        return None if form is None else form.word

    def nouns_of(self, *classes: str) -> tuple[Noun, ...]:
        """Nouns of the given classes, in list order."""
        return tuple(n for n in self.nouns.values() if n.cls in classes)

    def words(self) -> set[str]:
        """Every lemma of the lists, lowercase (names and cities included)."""
        out = {n.lemma.lower() for n in self.nouns.values()}
        out |= {a for words in self.adjectives.values() for a in words}
        out |= {x for v in self.verbs for x in (v.imperf, v.perf) if x}
        return out


@functools.cache
def russian_lexicon() -> RussianLexicon:
    """The checked, process-wide lexicon (about a second to build)."""
    return RussianLexicon()
