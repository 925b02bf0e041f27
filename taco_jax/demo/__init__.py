"""Embedded demo corpora: eSpeak NG speech of generated sentences, built locally and cached on disk.

- `espeak`: the eSpeak NG binding (speech and word timings).
- `vocabulary` / `sentences`: the CMUdict word classes and the English sentence generator.
- `vocabulary_ru` / `sentences_ru`: the Russian lemma lists (inflected by pymorphy3) and the Russian generator.
- `corpus`: the corpus on disk (wavs + filelists), its cache directory and build (`DemoCorpusConfig.language`).
"""

from taco_jax.demo.corpus import (
    CORPUS_VERSION,
    LANGUAGES,
    build_demo_corpus,
    corpus_settings,
    demo_corpus_dir,
    speakable,
)
from taco_jax.demo.espeak import WordTiming, espeak_version, synthesize_espeak, synthesize_espeak_words
from taco_jax.demo.sentences import MAX_WORDS, MIN_WORDS, generate_sentences
from taco_jax.demo.sentences_ru import generate_sentences_ru

__all__ = [
    "CORPUS_VERSION",
    "LANGUAGES",
    "MAX_WORDS",
    "MIN_WORDS",
    "WordTiming",
    "build_demo_corpus",
    "corpus_settings",
    "demo_corpus_dir",
    "espeak_version",
    "generate_sentences",
    "generate_sentences_ru",
    "speakable",
    "synthesize_espeak",
    "synthesize_espeak_words",
]
