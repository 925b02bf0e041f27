"""taco_jax.text.phonemes: eSpeak NG IPA, the `espeak_ipa:VOICE` cleaner, the `ipa_v1` table, the shared binding.

The expected IPA strings are eSpeak NG 1.52's (the espeakng-loader wheel), written out by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from taco_jax import espeak_ng
from taco_jax.demo import espeak
from taco_jax.text import get_symbol_table, sequence_to_text, text_to_sequence
from taco_jax.text import phonemes as ph
from taco_jax.text.cleaners import get_cleaner, known_cleaners
from taco_jax.text.phonemes import phonemize

REPO = Path(__file__).resolve().parents[1]
IPA = get_symbol_table("ipa_v1")
NINE = ("en-us", "en-gb", "ru", "de", "fr", "es", "it", "uk", "pl")

# One paragraph per language: pangrams, everyday words, numbers, clause punctuation.
PARAGRAPHS = {
    "en-us": "The quick brown fox jumps over the lazy dog; Sphinx of black quartz, judge my vow! Beat, bit, bait, "
    "bought, boat, book, boot, bird, butter, button, measure, church, thing, this. In 1984, 12 people paid $20.",
    "en-gb": "Pack my box with five dozen liquor jugs. Is it hot, or not? Water, city, party, hour, fire, tour, "
    "cure, poor, garage, vision, loch, bottle. On the 21st of March at 10:45, 3.5 percent agreed.",
    "ru": "Съешь же ещё этих мягких французских булок, да выпей чаю. Люди, верьте: щука, счастье, мужчина, "
    "дождь, солнце, объявление, льёт, жёлтый, шёлк, ящик! В 1984 году было 12 человек — 3,5 процента?",
    "de": "Victor jagt zwölf Boxkämpfer quer über den großen Sylter Deich. Ich, ach, Buch, Milch, Bäume, Feuer, "
    "Pfanne, Zahn, schön, müde, Öl, Mädchen, Chemie, Orange, Journalist; 1984 lebten dort 12 Menschen.",
    "fr": "Portez ce vieux whisky au juge blond qui fume! Un bon vin blanc, brun, parfum, oignon, montagne, "
    "famille, feuille, soleil, huit, lui, jeune, peur, sœur, pain, chien; en 1984, 12 personnes.",
    "es": "El veloz murciélago hindú comía feliz cardillo y kiwi. Perro, pero, llave, año, gente, jamón, "
    "guerra, pingüino, queso, chico, zapato, cielo, huevo, ciudad, abogado; en 1984 había 12 personas.",
    "it": "Quel vituperabile xenofobo zelante assaggia il whisky ed esclama: alleluja! Gnocchi, figlio, aglio, "
    "sciarpa, ghiaccio, chiesa, gelato, pizza, zucchero, caffè, perché, città; nel 1984 erano 12.",
    "uk": "Чуєш їх, доцю, га? Кумедна ж ти, прощайся без ґольфів! Щастя, джерело, дзвін, їжак, м'ясо, сім'я, "
    "хліб, вогонь, ніч, серце, пісня, життя, зілля, Київ; у 1984 році там жили 12 людей.",
    "pl": "Pchnąć w tę łódź jeża lub ośm skrzyń fig. Zażółć gęślą jaźń! Chrząszcz brzmi w trzcinie, źdźbło, "
    "dżdżownica, dzień, koń, rzeka, żaba, szkoła, ręka, gęś, pięć, miód; w 1984 roku żyło tam 12 ludzi.",
}


# --- hand-written expectations ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "voice", "expected"),
    [
        ("Мы берём всё.", "ru", "mˈy bʲirʲˈɵm fsʲˈɵ."),
        ("У нас 12 яблок, да?", "ru", "u nˈɑs dvʲɪnˈɑttsʌtʲ ˈjabɭʌk, dˈɑ?"),
        ("Привет — мир!", "ru", "prʲivʲˈet - mʲˈir!"),
        ("Ему 12 лет: он вырос.", "ru", "jɪmˈu dvʲɪnˈɑttsʌtʲ ɭʲˈet: ˈon vˈyrʌs."),
        ("Hello, world!", "en-us", "həlˈoʊ, wˈɜːld!"),
        ("I have 12 apples; you have none.", "en-us", "aɪ hæv twˈɛlv ˈæpəlz; juː hæv nˈʌn."),
        ("Yes - she did.", "en-us", "jˈɛs - ʃiː dˈɪd."),
        ("Wait… what?!", "en-us", "wˈeɪt... wˌʌt?!"),
        ("We met at 5 p.m. today.", "en-us", "wiː mˈɛt æt fˈaɪv pˌiːˈɛm tədˈeɪ."),  # one abbreviation, no full stop
        ("It’s “quoted” (aside) text.", "en-us", "ɪts kwˈoʊɾᵻd ɐsˈaɪd tˈɛkst."),  # quotes and brackets dropped
        ("Hello there, 1,000 people.", "en-gb", "həlˈəʊ ðˈeə, wˈɒn θˈaʊzənd pˈiːpəl."),  # "en-gb": a language code
    ],
)
def test_known_phrases(text, voice, expected):
    assert phonemize(text, voice) == expected


def test_numbers_are_read_out_in_the_voice_language():
    assert phonemize("12", "en-us") == "twˈɛlv"
    assert phonemize("12", "ru") == "dvʲɪnˈɑttsʌtʲ"
    for voice, text in PARAGRAPHS.items():
        assert not re.search(r"\d", phonemize(text, voice)), voice
    # Separators inside a number are eSpeak's to read, not clause punctuation.
    assert "," not in phonemize("1,000", "en-us") and "." not in phonemize("3.5", "en-us")


def test_punctuation_stress_and_word_boundaries_are_kept():
    for voice, text in PARAGRAPHS.items():
        out = phonemize(text, voice)
        # The clause punctuation comes out in the order it went in (dashes as "-", the only dash-like input here).
        marks_in = re.sub(r"[^,.;:!?—]", "", re.sub(r"(?<=\d)[.,:](?=\d)|\$", "", text)).replace("—", "-")
        marks_out = re.sub(r"[^,.;:!?-]", "", re.sub(r"(?<=\S)-", "", out))
        assert marks_out == marks_in, voice
        assert "  " not in out and out == out.strip(), voice
        assert out.count("ˈ") >= 10, voice  # stress marks survive
    plain = phonemize("the quick brown fox jumps over the lazy dog", "en-us")
    assert plain == "ðə kwˈɪk bɹˈaʊn fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ"  # one space per word break


def test_case_is_read_by_espeak():
    assert phonemize("US", "en-us") == "jˌuːˈɛs" and phonemize("us", "en-us") == "ˌʌs"


# --- the symbol table ------------------------------------------------------------------------------------------


def test_ipa_v1_is_pinned():
    assert IPA.name == "ipa_v1" and IPA.version == 1
    assert len(IPA) == 117
    assert IPA.fingerprint() == "798e297f5772ad35"
    assert IPA.pad == "_" and IPA.symbols[1] == "-" and IPA.eos == "~" and IPA.eos_id == 116
    assert "".join(IPA.symbols[2:16]) == "!'(),.:;? ˈˌːˑ"
    assert all(len(s) == 1 for s in IPA.symbols)  # one symbol per code point
    for ch in "ʲ\u0303\u0361ɕʑɵɨ":
        assert ch in IPA.symbol_to_id, ch


@pytest.mark.parametrize("voice", NINE)
def test_every_symbol_of_a_paragraph_is_in_ipa_v1(voice):
    ids, dropped = text_to_sequence(PARAGRAPHS[voice], IPA, [f"espeak_ipa:{voice}"], add_eos=True)
    assert not dropped, (voice, dropped)
    assert len(ids) > 100 and ids[-1] == IPA.eos_id
    assert sequence_to_text(ids[:-1], IPA) == phonemize(PARAGRAPHS[voice], voice)


# --- voices and the cleaner ------------------------------------------------------------------------------------


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'xx-nope'.*available_voices\(\)"):
        phonemize("hello", "xx-nope")
    with pytest.raises(ValueError, match="xx-nope"):
        get_cleaner("espeak_ipa:xx-nope")  # eagerly, before any text
    with pytest.raises(ValueError, match="voice"):
        phonemize("hello", "")
    assert phonemize("hello", "en-us") == "həlˈoʊ"  # a failed selection leaves nothing behind


def test_available_voices_select_by_name_identifier_or_language():
    voices = espeak_ng.available_voices()
    assert len(voices) > 100
    russian = next(v for v in voices if "ru" in v.languages)
    assert russian.identifier == "zle/ru"
    expected = phonemize("Мы берём всё.", "ru")
    assert phonemize("Мы берём всё.", russian.name) == phonemize("Мы берём всё.", russian.identifier) == expected
    assert phonemize("water", "en-gb") == phonemize("water", "en") != phonemize("water", "en-us")


def test_cleaner_collapses_whitespace_and_is_registered():
    assert "espeak_ipa:ARG" in known_cleaners()
    clean = get_cleaner("espeak_ipa:ru")
    assert clean("  Мы\tберём \n всё. ") == "mˈy bʲirʲˈɵm fsʲˈɵ."
    assert get_cleaner("espeak_ipa:ru") is clean  # built once per argument


# --- speed, threads, determinism -------------------------------------------------------------------------------


def _sentences(n: int) -> list[str]:
    words = re.findall(r"[a-z]+", PARAGRAPHS["en-us"].lower() + " " + PARAGRAPHS["en-gb"].lower())
    rng = random.Random(0)
    out = []
    for i in range(n):
        body = " ".join(rng.choice(words) for _ in range(rng.randint(5, 14)))
        out.append(f"{body.capitalize()}, {i} {rng.choice(words)}{rng.choice('.?!')}")
    return out


def test_a_thousand_sentences_in_well_under_ten_seconds():
    sentences = _sentences(1000)
    ph._phonemize_cached.cache_clear()
    start = time.perf_counter()
    first = [phonemize(s, "en-us") for s in sentences]
    elapsed = time.perf_counter() - start
    assert elapsed < 10.0, elapsed
    start = time.perf_counter()
    assert [phonemize(s, "en-us") for s in sentences] == first
    assert time.perf_counter() - start < 0.5  # the second pass is cached


def test_thread_safe_and_independent_of_history():
    jobs = [(s, voice) for voice in ("en-us", "ru", "de") for s in _sentences(30)]
    jobs += [(PARAGRAPHS[v], v) for v in NINE]
    expected = {job: phonemize(*job) for job in jobs}
    ph._phonemize_cached.cache_clear()
    results: dict[tuple[str, str], str] = {}
    errors: list[BaseException] = []

    def work(chunk):
        try:
            for job in chunk:
                results[job] = phonemize(*job)
            espeak.synthesize_espeak("One more.")  # synthesis reloads the library under the same lock
        except Exception as e:  # reported by the assert below
            errors.append(e)

    shuffled = random.Random(1).sample(jobs, len(jobs))
    threads = [threading.Thread(target=work, args=(shuffled[i::4],)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results == expected


# --- the shared binding: demo audio unchanged, no import-time side effects -------------------------------------

# Recorded with the demo's own loader before it moved to taco_jax.espeak_ng (float32 samples, x86_64 wheel).
_GOLDEN_AUDIO = {
    ("Please call me back.", "en-us"): ("6ecc52a35c5b40cc5029d38af27022391ea53733696abeb21dba35f744216462", 25118),
    ("Мы берём всё.", "ru"): ("63ff1a2c16bee53896dbbfe67c49f73d83be78e7a894ce8425866f46b46d7d2e", 16660),
}


def test_demo_audio_is_unchanged_by_phonemising():
    before = {key: espeak.synthesize_espeak_words(*key) for key in _GOLDEN_AUDIO}
    phonemize("Something else entirely, kept loaded between calls.", "de")  # the kept handle is now loaded
    for key, (audio, sample_rate, words) in [*before.items(), *before.items()]:  # twice: no state carried over
        again, _, again_words = espeak.synthesize_espeak_words(*key)
        assert again.tobytes() == audio.tobytes() and again_words == words, key
        assert sample_rate == 22050
        if platform.machine() in ("x86_64", "AMD64"):  # where the hashes were recorded
            assert (hashlib.sha256(audio.tobytes()).hexdigest(), len(audio)) == _GOLDEN_AUDIO[key], key
    assert before[("Please call me back.", "en-us")][2][:3] == [(0, 6, 0), (7, 4, 7288), (12, 2, 13801)]
    assert espeak.espeak_version().startswith("1.52")


def test_import_loads_nothing_and_text_does_not_import_demo():
    code = (
        "import json, sys, taco_jax.text.phonemes, taco_jax.text.cleaners; "
        "maps = open('/proc/self/maps').read() if sys.platform.startswith('linux') else ''; "
        "print(json.dumps([sorted(m for m in sys.modules if m.startswith('taco_jax.demo')), 'libespeak' in maps]))"
    )
    env = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == [[], False]
