"""taco_jax.demo: eSpeak NG synthesis, the sentence generator and the cached corpus on disk."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import soundfile as sf

from taco_jax.config import AudioConfig, DemoCorpusConfig
from taco_jax.demo import corpus, espeak, vocabulary
from taco_jax.demo.sentences import MAX_WORDS, MIN_WORDS, generate_sentences
from taco_jax.demo.sentences_ru import generate_sentences_ru

TINY = DemoCorpusConfig(n_utterances=12, n_val=3, seed=3)
LINE_RE = re.compile(r"^wavs/\d{6}\.wav\|[^|]+[.?!]$")


def _words(sentences: list[str]) -> set[str]:
    return {w for s in sentences for w in re.findall(r"[a-z]+", s.lower())}


# --- synthesis -----------------------------------------------------------------------------------------------


def test_espeak_speech_is_not_silent():
    audio, sr = espeak.synthesize_espeak("The quick brown fox jumps over the lazy dog.")
    assert sr == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 1.0 < len(audio) / sr < 5.0
    assert np.abs(audio).max() <= 1.0
    assert np.sqrt(np.mean(audio**2)) > 0.02
    # Silence is trimmed to about 50 ms at each end: the first and last 10 ms are quiet, the middle is not.
    edge = sr // 100
    assert np.abs(audio[:edge]).max() < 0.1 * np.abs(audio).max()
    assert np.abs(audio[-edge:]).max() < 0.1 * np.abs(audio).max()


def test_espeak_duration_grows_with_text_length():
    short, sr = espeak.synthesize_espeak("one two three")
    long, _ = espeak.synthesize_espeak("one two three four five six seven eight nine ten eleven twelve")
    ratio = len(long) / len(short)
    assert 2.0 < ratio < 6.0, ratio
    slow, _ = espeak.synthesize_espeak("one two three", words_per_minute=100)
    assert len(slow) > 1.3 * len(short)


def test_espeak_is_deterministic_and_rejects_unknown_voice():
    # eSpeak carries state between utterances in C statics; the engine resets it, so an utterance does not
    # depend on what was said before it.
    a, _ = espeak.synthesize_espeak("Please call me back.")
    espeak.synthesize_espeak("Something completely different, with another length and melody?")
    b, _ = espeak.synthesize_espeak("Please call me back.")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="voice"):
        espeak.synthesize_espeak("hello", voice="no-such-voice")


# --- sentence generator --------------------------------------------------------------------------------------


def test_generator_vocabulary_and_content():
    sentences = generate_sentences(900, seed=7)
    assert len(sentences) == len(set(sentences)) == 900
    assert len(_words(sentences)) >= 2000
    assert sum(bool(re.search(r"\d", s)) for s in sentences) >= 50
    assert any(re.search(r"\d\.\d", s) for s in sentences)  # decimals
    assert any(re.search(r"\b(1[89]|20)\d\d\b", s) for s in sentences)  # years
    for mark in (",", ".", "?", "!", "'"):
        assert sum(mark in s for s in sentences) >= 20, mark
    lengths = [len(s.split()) for s in sentences]
    assert min(lengths) >= MIN_WORDS and max(lengths) <= MAX_WORDS
    assert len(set(lengths)) >= 8  # varied lengths
    # English-looking: frequent function words are common.
    words = [w for s in sentences for w in re.findall(r"[a-z']+", s.lower())]
    for fw in ("the", "a", "and", "you", "we", "they", "in", "is"):
        assert words.count(fw) >= 10, fw
    # Every open-class word comes from CMUdict.
    vocab = vocabulary.cmudict_vocabulary()
    assert vocab.words() <= set(vocabulary.load_cmudict())


@pytest.mark.parametrize("generate", [generate_sentences, generate_sentences_ru], ids=["en", "ru"])
def test_generator_is_deterministic_and_prefix_stable(generate):
    a = generate(40, seed=11)
    assert a == generate(40, seed=11)
    assert generate(70, seed=11)[:40] == a
    assert a != generate(40, seed=12)
    short = generate(30, seed=1, min_words=4, max_words=6)
    assert all(4 <= len(s.split()) <= 6 for s in short)
    with pytest.raises(ValueError, match="min_words"):
        generate(3, seed=1, min_words=5, max_words=4)


# --- corpus on disk ------------------------------------------------------------------------------------------


def _read_filelist(path: str) -> list[tuple[str, str]]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert all(LINE_RE.match(line) for line in lines), lines
    return [tuple(line.split("|")) for line in lines]  # type: ignore[misc]


def test_build_layout_and_filelist_format(tmp_path):
    train, val = corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path), progress=False)
    corpus_dir = os.path.dirname(train)
    assert os.path.dirname(val) == corpus_dir and os.path.dirname(corpus_dir) == str(tmp_path)
    train_items, val_items = _read_filelist(train), _read_filelist(val)
    assert len(train_items) == TINY.n_utterances - TINY.n_val and len(val_items) == TINY.n_val
    # Numbered in order, val is the tail.
    rels = [rel for rel, _ in train_items + val_items]
    assert rels == [f"wavs/{i:06d}.wav" for i in range(1, TINY.n_utterances + 1)]
    for rel, _ in train_items + val_items:
        info = sf.info(os.path.join(corpus_dir, rel))  # relative to the filelist's directory
        assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16"
        assert TINY.min_seconds <= info.duration <= TINY.max_seconds + 0.01
    meta = json.load(open(os.path.join(corpus_dir, "meta.json")))
    assert meta["n_train"] == 9 and meta["n_val"] == 3 and meta["demo"]["seed"] == 3
    assert meta["seconds"]["train"] > 9.0
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temp dir left


def test_build_is_deterministic(tmp_path):
    a = corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path / "a"), progress=False)
    b = corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path / "b"), progress=False)
    for pa, pb in zip(a, b, strict=True):
        assert open(pa).read() == open(pb).read()
    for rel, _ in _read_filelist(a[0]) + _read_filelist(a[1]):
        wa = open(os.path.join(os.path.dirname(a[0]), rel), "rb").read()
        wb = open(os.path.join(os.path.dirname(b[0]), rel), "rb").read()
        assert wa == wb, rel


def test_second_call_reuses_cache(tmp_path, monkeypatch):
    first = corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path), progress=False)

    def boom(*args, **kwargs):
        raise AssertionError("the cached corpus should have been reused")

    monkeypatch.setattr(corpus, "_render", boom)
    assert corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path), progress=False) == first
    # Different settings -> a different directory (and a new build).
    other = corpus.demo_corpus_dir(DemoCorpusConfig(n_utterances=12, n_val=3, seed=4), AudioConfig(), str(tmp_path))
    assert other != os.path.dirname(first[0])


def test_interrupted_build_leaves_nothing(tmp_path, monkeypatch):
    real = corpus._render
    calls = []

    def flaky(sentence, cfg, voice):
        calls.append(sentence)
        if len(calls) == 5:
            raise KeyboardInterrupt  # e.g. Ctrl-C halfway through
        return real(sentence, cfg, voice)

    monkeypatch.setattr(corpus, "_render", flaky)
    with pytest.raises(KeyboardInterrupt):
        corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path), progress=False)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(corpus, "_render", real)
    train, _ = corpus.build_demo_corpus(TINY, AudioConfig(), root=str(tmp_path), progress=False)
    assert os.path.exists(train)


def test_resamples_to_configured_rate(tmp_path):
    cfg = DemoCorpusConfig(n_utterances=3, n_val=1, seed=5)
    train, _ = corpus.build_demo_corpus(cfg, AudioConfig(sampling_rate=16000), root=str(tmp_path), progress=False)
    rel = _read_filelist(train)[0][0]
    assert sf.info(os.path.join(os.path.dirname(train), rel)).samplerate == 16000


def test_invalid_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="n_val"):
        corpus.build_demo_corpus(DemoCorpusConfig(n_utterances=5, n_val=5), AudioConfig(), root=str(tmp_path))
    with pytest.raises(ValueError, match="min_seconds"):
        corpus.build_demo_corpus(
            DemoCorpusConfig(min_seconds=3.0, max_seconds=2.0), AudioConfig(), root=str(tmp_path), progress=False
        )
