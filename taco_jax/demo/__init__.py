"""Embedded demo corpora: eSpeak NG speech of generated sentences, built locally and cached on disk.

- `espeak`: the eSpeak NG binding (speech and word timings).
- `vocabulary` / `sentences`: the CMUdict word classes and the sentence generator.
- `corpus`: the corpus on disk (wavs + filelists), its cache directory and build.
"""

from taco_jax.demo.corpus import CORPUS_VERSION, build_demo_corpus, corpus_settings, demo_corpus_dir
from taco_jax.demo.espeak import WordTiming, espeak_version, synthesize_espeak, synthesize_espeak_words
from taco_jax.demo.sentences import MAX_WORDS, MIN_WORDS, generate_sentences

__all__ = [
    "CORPUS_VERSION",
    "MAX_WORDS",
    "MIN_WORDS",
    "WordTiming",
    "build_demo_corpus",
    "corpus_settings",
    "demo_corpus_dir",
    "espeak_version",
    "generate_sentences",
    "synthesize_espeak",
    "synthesize_espeak_words",
]
