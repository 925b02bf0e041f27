"""Russian grapheme front end: `russian_cleaners` (numbers, abbreviations, Latin, punctuation) and the
`russian_stress:PATH` dictionary cleaner. The expected Russian below is written by hand."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys

import pytest

from taco_jax.errors import UserError
from taco_jax.text import clean_text, get_symbol_table, sequence_to_text, text_to_sequence
from taco_jax.text.cleaners import get_cleaner, known_cleaners
from taco_jax.text.russian import russian_cleaners, transliterate_latin
from taco_jax.text.stress import (
    StressDictionary,
    StressDictionaryError,
    apply_stress,
    load_stress_dictionary,
    russian_stress_cleaner,
    stress_dictionary_fingerprint,
)

RU = ["russian_cleaners"]
TABLE = get_symbol_table("russian_v1")

CASES = [
    # punctuation, case, whitespace
    ("Привет, мир!", "привет, мир!"),
    ("Что?! Нет... Да; так: (вот)", "что?! нет... да; так: (вот)"),
    ("Ну…", "ну..."),
    ("  много   пробелов \n тут  ", "много пробелов тут"),
    # cardinals, with the number agreeing with its noun or preposition
    ("5 домов", "пять домов"),
    ("1 книга", "одна книга"),
    ("2 книги", "две книги"),
    ("В 5 домах", "в пяти домах"),
    ("от 5 до 7 лет", "от пяти до семи лет"),
    ("за 1 минуту", "за одну минуту"),
    ("Ему 21 год.", "ему двадцать один год."),
    ("007", "ноль ноль семь"),
    # ordinals written with a suffix
    ("5-й", "пятый"),
    ("2-го мая", "второго мая"),
    ("21-я", "двадцать первая"),
    ("3-е место", "третье место"),
    ("в 5-м классе", "в пятом классе"),
    ("на 5-й улице", "на пятой улице"),
    ("в 90-х годах", "в девяностых годах"),
    ("5-летний", "пятилетний"),
    ("в 2-х томах", "в двух томах"),
    # years and dates
    ("в 1999 году", "в тысяча девятьсот девяносто девятом году"),
    ("2024 г. стал рекордным", "две тысячи двадцать четвёртый год стал рекордным"),
    ("Это было в 2024 г.", "это было в две тысячи двадцать четвёртом году."),
    ("в 2024 г. Потом", "в две тысячи двадцать четвёртом году. потом"),
    ("с 2020 года", "с две тысячи двадцатого года"),
    ("в 1999-м году", "в тысяча девятьсот девяносто девятом году"),
    ("в 1990-х гг.", "в тысяча девятьсот девяностых годах."),
    ("в 33 г. до н.э.", "в тридцать третьем году до нашей эры."),
    ("12 мая 2024 года", "двенадцатое мая две тысячи двадцать четвёртого года"),
    ("1 мая", "первое мая"),
    ("01.01.2000", "первое января двухтысячного года"),
    # money, with the counted noun agreeing
    ("100 руб. в месяц", "сто рублей в месяц"),
    ("1 руб., 21 руб., 3 руб.", "один рубль, двадцать один рубль, три рубля."),
    ("1 рубль, 21 рубль, 3 рубля", "один рубль, двадцать один рубль, три рубля"),
    ("12,50 руб. за штуку", "двенадцать рублей пятьдесят копеек за штуку"),
    ("12 руб. 50 коп. за штуку", "двенадцать рублей пятьдесят копеек за штуку"),
    ("до 100 руб. в день", "до ста рублей в день"),
    ("10 р. сдачи", "десять рублей сдачи"),
    ("$5", "пять долларов"),
    ("$3.50", "три доллара пятьдесят центов"),
    ("5 € и 1 евро", "пять евро и один евро"),
    ("5 тыс. руб. в месяц", "пять тысяч рублей в месяц"),
    ("2 млн человек", "два миллиона человек"),
    # decimals, percent, signs, separators, time, ranges, units
    ("3,5", "три целых пять десятых"),
    ("0.25", "ноль целых двадцать пять сотых"),
    ("15%", "пятнадцать процентов"),
    ("1%, 2%, 3,5%", "один процент, два процента, три целых пять десятых процента"),
    ("-5", "минус пять"),
    ("Мороз −12°", "мороз минус двенадцать градусов"),
    ("1 000 000 рублей", "миллион рублей"),
    ("12\u2009345 и 7\u00a0000", "двенадцать тысяч триста сорок пять и семь тысяч"),
    ("в 10:30", "в десять тридцать"),
    ("9:05", "девять ноль пять"),
    ("5-7 дней", "пять семь дней"),
    ("2+2", "два плюс два"),
    ("5 кг и 2,5 кг", "пять килограммов и две целых пять десятых килограмма"),
    ("100 км/ч", "сто километров в час"),
    ("№5", "номер пять"),
    ("mp3", "мп три"),
    # abbreviations
    ("Книги, журналы и т.д.", "книги, журналы и так далее."),
    ("столы, стулья и т. п. вещи", "столы, стулья и тому подобное вещи"),
    ("Т.е. завтра", "то есть завтра"),
    ("Т. к. он ушёл", "так как он ушёл"),
    ("т.н. эксперт", "так называемый эксперт"),
    ("г. Москва", "город москва"),
    ("в г. Москве", "в городе москве"),
    ("ул. Ленина, д. 5", "улица ленина, дом пять"),
    ("на ул. Ленина", "на улице ленина"),
    ("стр. 5", "страница пять"),
    ("см. выше", "смотри выше"),
    ("5 тыс. человек и др.", "пять тысяч человек и другие."),
    # ё and stress marks
    ("Ёжик пришёл", "ёжик пришёл"),
    ("Зам+ок и з+амок", "зам+ок и з+амок"),
    ("заме́к", "зам+ек"),
    # Latin words: a spelling rule
    ("Google", "гугле"),
    ("Python и Java", "питон и джава"),
    ("Microsoft Excel", "микрософт эксцел"),
    ("Shop, Xbox, city", "шоп, ксбокс, цити"),
    ("café Müller", "кафе муллер"),
    # quotes, dashes, hyphens
    ("«Война и мир»", "война и мир"),
    ("„Да“, \"нет\" и 'может'", "да, нет и может"),
    ("Москва — столица России.", "москва, столица россии."),
    ("— Да, — ответил он.", "да, ответил он."),
    ("Москва – Петербург", "москва, петербург"),
    ("ул. Ленина, д. 5 — 2-й этаж", "улица ленина, дом пять, второй этаж"),
    ("кто-то, где-нибудь, по-русски", "кто-то, где-нибудь, по-русски"),
]


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_russian_cleaners(text, expected):
    assert russian_cleaners(text) == expected
    assert clean_text(text, RU) == expected
    assert set(expected) <= set(TABLE.symbols)  # the hand-written answer itself fits the table


def test_registered_and_import_is_light():
    assert "russian_cleaners" in known_cleaners() and "russian_stress:ARG" in known_cleaners()
    code = (
        "import sys, taco_jax.text, taco_jax.text.russian, taco_jax.text.stress; "
        "print('pymorphy3' in sys.modules, 'num2words' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_latin_rules():
    words = ("chat", "think", "phone", "book", "see", "yes", "day", "quiz", "sch+ool")
    assert [transliterate_latin(w) for w in words] == ["чат", "тинк", "фоне", "бук", "си", "йес", "дай", "квиз", "ш+ул"]


# --- encoding ------------------------------------------------------------------------------------------------


def test_round_trip_without_dropped_characters():
    text = "«Ёлка» стоит 1 500 руб., т.е. на 15% дороже, чем в 2023 г. — зам+ок, кто-то... Что?!"
    ids, dropped = text_to_sequence(text, TABLE, RU, add_eos=True)
    assert not dropped
    assert ids[-1] == TABLE.eos_id
    cleaned = clean_text(text, RU)
    assert sequence_to_text(ids, TABLE) == cleaned + "~"
    assert cleaned == (
        "ёлка стоит тысяча пятьсот рублей, то есть на пятнадцать процентов дороже, чем в две тысячи двадцать "
        "третьем году, зам+ок, кто-то... что?!"
    )


def test_other_alphabets_are_reported_not_deleted():
    ids, dropped = text_to_sequence("Мир 你好 и Σ", TABLE, RU, add_eos=True)
    assert dropped == {"你": 1, "好": 1, "σ": 1}
    assert sequence_to_text(ids, TABLE) == "мир  и ~"


# --- stress dictionary ---------------------------------------------------------------------------------------

DICTIONARY = """\ufeff# test dictionary
замок|з+амок

елка|+ёлка
береза|берёза
кто|кт+о
по-русски|по-р+усски
все|вс+е
всё|вс+ё
Москва|Москв+а
замок|з+амок
"""


@pytest.fixture
def dict_path(tmp_path):
    path = tmp_path / "stress.txt"
    path.write_text(DICTIONARY, encoding="utf-8")
    return path


def test_dictionary_loads(dict_path):
    d = load_stress_dictionary(dict_path)
    assert len(d) == 8
    assert d.lookup("Москва") == "москв+а" and d.lookup("ёлка") == "+ёлка" and d.lookup("дом") is None


STRESS_CASES = [
    ("Старый замок", "старый з+амок"),
    ("Елка и ёлка", "+ёлка и +ёлка"),  # ё restored from the dictionary
    ("береза", "берёза"),  # a ё-only form marks the stress by its ё
    ("зам+ок", "зам+ок"),  # the user's "+" beats the dictionary
    ("кто-то", "кт+о-то"),  # hyphenated parts separately
    ("по-русски", "по-р+усски"),  # ... after the whole word
    ("всё и все", "вс+ё и вс+е"),
    ("В Москве и Москва", "в москве и москв+а"),
    ("Замок в 2024 г.", "з+амок в две тысячи двадцать четвёртом году."),
]


@pytest.mark.parametrize(("text", "expected"), STRESS_CASES, ids=[c[0] for c in STRESS_CASES])
def test_stress_cleaner(dict_path, text, expected):
    assert clean_text(text, [*RU, f"russian_stress:{dict_path}"]) == expected


def test_stress_keeps_written_yo_when_the_dictionary_lacks_it():
    d = StressDictionary.from_entries({"все": "вс+е", "ежик": "еж+ик"})
    assert apply_stress("всё ёжик ежик", d) == "всё ёжик еж+ик"


def test_stress_round_trip(dict_path):
    ids, dropped = text_to_sequence("Елка, замок!", TABLE, [*RU, f"russian_stress:{dict_path}"], add_eos=True)
    assert not dropped and sequence_to_text(ids, TABLE) == "+ёлка, з+амок!~"


BAD_LINES = [
    ("замок з+амок", "no '|'"),
    ("замок|з+ам|ок", "more than one '|'"),
    ("замок|замок", "no '+'"),
    ("замок|з+ам+ок", "2 '+' marks"),
    ("замок|+замок", "not directly before a vowel"),
    ("замок|замок+", "not directly before a vowel"),
    ("замок|з+амки", "different word"),
    ("зам+ок|з+амок", "has a '+'"),
    ("zamok|z+amok", "other than Russian letters"),
    ("ёлка|+елка", "drops the ё"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES, ids=[b[0] for b in BAD_LINES])
def test_dictionary_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"# header\nкот|к+от\n{line}\n", encoding="utf-8")
    with pytest.raises(StressDictionaryError, match=re.escape(message)) as info:
        load_stress_dictionary(path)
    assert f"{path}:3" in str(info.value)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)


def test_dictionary_conflict_names_both_lines(tmp_path):
    path = tmp_path / "conflict.txt"
    path.write_text("замок|з+амок\nкот|к+от\n\nзамок|зам+ок\n", encoding="utf-8")
    with pytest.raises(StressDictionaryError) as info:
        load_stress_dictionary(path)
    msg = str(info.value)
    assert f"{path}:4" in msg and f"{path}:1" in msg and "з+амок" in msg and "зам+ок" in msg


def test_dictionary_unreadable_files(tmp_path):
    missing = tmp_path / "missing.txt"
    with pytest.raises(StressDictionaryError, match="missing.txt"):
        load_stress_dictionary(missing)
    with pytest.raises(ValueError, match="missing.txt"):  # through the config's cleaner spec
        get_cleaner(f"russian_stress:{missing}")
    with pytest.raises(StressDictionaryError, match="missing.txt"):
        stress_dictionary_fingerprint(missing)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("кот|к+от\n".encode() + "caf\xe9|caf+e\n".encode("latin-1"))
    with pytest.raises(StressDictionaryError, match=r"latin1\.txt:2: not UTF-8"):
        load_stress_dictionary(latin1)


def test_factory_caches_by_mtime_and_size(dict_path):
    first = russian_stress_cleaner(str(dict_path))
    assert first("замок") == "з+амок"
    dict_path.write_text("замок|зам+ок\n", encoding="utf-8")
    stat = dict_path.stat()
    os.utime(dict_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert russian_stress_cleaner(str(dict_path))("замок") == "зам+ок"
    assert first("замок") == "з+амок"  # a cleaner already built keeps the dictionary it validated


def test_fingerprint(dict_path):
    fp = stress_dictionary_fingerprint(dict_path)
    assert fp == hashlib.sha256(dict_path.read_bytes()).hexdigest()[:16]
    dict_path.write_text(DICTIONARY + "кот|к+от\n", encoding="utf-8")
    assert stress_dictionary_fingerprint(dict_path) != fp
