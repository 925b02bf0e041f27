"""Free-running quality of a trained demo model against eSpeak NG's own rendering of unseen sentences.

For each of ten sentences a user might type (none is in the generated corpus) the model synthesizes a mel freely;
eSpeak renders the same (cleaned) text and its mel is the reference. Per sentence: whether the gate stopped it,
the length ratio to eSpeak's, and the mean squared log-mel error along a DTW path (librosa's DTW on Euclidean frame
distances). The baseline is the same DTW error between two *different* eSpeak sentences (consecutive pairs of the
ten). Pass: all ten stop, all lengths within +-15%, and mean model error <= half the mean baseline error.

Sentence sets (by default `ru` for a run of the Russian demo, `data.demo.language: ru`, else `default`):
`default`, everyday English; `oov`, English made mostly of words the English demo generator never uses (each row
reports its out-of-vocabulary word share); `ru`, everyday Russian, four with digits.

The command line is `python benchmarks/demo_quality.py`; the tuner's `quality` objective calls `evaluate`.
"""

from __future__ import annotations

import functools
import re

import librosa
import numpy as np

DEFAULT_SENTENCES = [
    "Can you tell me the way to the nearest train station?",
    "I would like a cup of coffee with milk, please.",
    "The meeting has been moved to Thursday afternoon.",
    "My brother bought a new bicycle last week.",
    "It is raining outside, so take an umbrella.",
    "We will leave for the airport at six in the morning.",
    "She read three books during the summer holidays.",
    "Please turn off the lights when you leave the room.",
    "The children are playing football in the park.",
    "How much does this blue jacket cost?",
]

# Mostly words the English demo generator never writes (see oov_share: 0.6 to 0.75 of each sentence).
OOV_SENTENCES = [
    "Grandma knitted woolly mittens for the chilly weekend.",
    "Penguins waddled across the icy glacier at midnight.",
    "Our librarian recommended cinnamon pancakes with marmalade.",
    "Hedgehogs and squirrels gathered acorns beneath the oak.",
    "Fireflies glowed above the lighthouse tonight.",
    "Tomorrow the orchestra rehearses a violin symphony.",
    "Pineapple, mango and coconut make a delicious smoothie.",
    "The museum exhibits an enormous dinosaur skeleton.",
    "Whose polka umbrella was forgotten beside the escalator?",
    "Astronauts admired Saturn through a gigantic telescope.",
]

# Written by hand, none produced by the Russian generator (taco_jax.demo.sentences_ru); four with digits.
RU_SENTENCES = [
    "Поезд отправляется в 7:45 с третьего пути.",
    "Здравствуйте, меня зовут Анна, и я живу в Москве.",
    "Скажите, пожалуйста, как пройти к библиотеке?",
    "В 2024 году мы переехали в новую квартиру.",
    "Встреча начнётся в 10:30 в большом зале.",
    "Завтра обещают тёплую погоду и небольшой дождь.",
    "Моей бабушке исполнилось 85 лет.",
    "Позвоните мне, пожалуйста, после обеда.",
    "Какая чудесная сегодня погода!",
    "Мы купили свежий хлеб, молоко и немного сыра.",
]

SENTENCE_SETS = {"default": DEFAULT_SENTENCES, "oov": OOV_SENTENCES, "ru": RU_SENTENCES}
SENTENCES = DEFAULT_SENTENCES  # the name earlier scripts import

# Words the English templates write themselves (taco_jax/demo/sentences.py), beyond its closed-class tuples.
_TEMPLATE_WORDS = frozenset(
    "a an the is are was were am have has do does did not can't don't doesn't didn't won't never what please and "
    "but yet so of on in 's".split()
)
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


@functools.cache
def english_generator_vocabulary() -> frozenset[str]:
    """Every word the English demo generator can write: the CMUdict word classes with their forms, the
    closed-class tuples of taco_jax.demo.sentences and the words of its templates (lowercase)."""
    from taco_jax.demo import sentences
    from taco_jax.demo.vocabulary import cmudict_vocabulary

    words = set(cmudict_vocabulary().words()) | set(_TEMPLATE_WORDS)
    words |= {w.lower() for w, _ in sentences._SUBJECTS}
    groups = ("_DET_SINGULAR", "_DET_PLURAL", "_PREPOSITIONS", "_MODALS", "_OPENERS", "_CONJUNCTIONS", "_WH", "_MONTHS",
              "_NAMES")  # fmt: skip
    for group in groups:
        words |= {w for phrase in getattr(sentences, group) for w in phrase.lower().split()}
    return frozenset(words)


def oov_share(text: str) -> float:
    """Share of the words of `text` the English demo generator never writes ("grandma's" counts as "grandma").

    >>> oov_share("The cat sat.") < oov_share("Grandma knitted woolly mittens.")
    True
    """
    vocab = english_generator_vocabulary()
    words = [w.removesuffix("'s") for w in _WORD_RE.findall(text.lower())]
    return sum(w not in vocab for w in words) / max(len(words), 1)


def default_sentence_set(language: str) -> str:
    """The set a run is measured on unless `--sentences` says otherwise: "ru" for the Russian demo."""
    return "ru" if language == "ru" else "default"


def dtw_mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared log-mel error along the optimal DTW path between a [Ta, C] and b [Tb, C]."""
    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    return float(np.mean((a[path[:, 0]] - b[path[:, 1]]) ** 2))


def reference_mels(sentences: list[str], cfg) -> list[np.ndarray]:
    """eSpeak's log-mels of `sentences`, rendered as the demo corpus renders (`spoken_text`: the language's grapheme
    cleaners without "+", whatever front end the run uses), with the corpus voice and speaking rate."""
    from taco_jax.audio import mel_spectrogram
    from taco_jax.demo import synthesize_espeak
    from taco_jax.demo.corpus import spoken_text

    demo = cfg.data.demo
    refs = []
    for text in sentences:
        wav, sr = synthesize_espeak(spoken_text(text, demo), demo.voice, demo.words_per_minute)
        if sr != cfg.audio.sampling_rate:
            import soxr

            wav = soxr.resample(wav, sr, cfg.audio.sampling_rate)
        refs.append(mel_spectrogram(wav, cfg.audio))
    return refs


def evaluate(checkpoint: str, tolerance: float = 0.15, sentence_set: str | None = None) -> dict:
    """Synthesize the set (`sentence_set`, default per `default_sentence_set`) and compare with eSpeak."""
    from taco_jax.synthesize import load_synthesizer

    synth = load_synthesizer(checkpoint)
    cfg = synth.cfg
    sentence_set = sentence_set or default_sentence_set(cfg.data.demo.language)
    sentences = SENTENCE_SETS[sentence_set]
    refs = reference_mels(sentences, cfg)
    results = synth(sentences, batch_size=len(sentences))
    rows = []
    for text, res, ref in zip(sentences, results, refs, strict=True):
        ratio = res.frames / len(ref)
        row = {
            "text": text,
            "stopped": res.stopped,
            "frames": res.frames,
            "espeak_frames": len(ref),
            "length_ratio": ratio,
            "length_ok": abs(ratio - 1.0) <= tolerance,
            "dtw_mse": dtw_mse(res.mel, ref),
        }
        if sentence_set != "ru":  # English: how far the sentence is from the corpus vocabulary
            row["oov_word_share"] = oov_share(text)
        rows.append(row)
    baseline = [dtw_mse(refs[i], refs[(i + 1) % len(refs)]) for i in range(len(refs))]
    model_err = float(np.mean([r["dtw_mse"] for r in rows]))
    base_err = float(np.mean(baseline))
    summary = {
        "checkpoint": checkpoint,
        "sentences": sentence_set,
        "stopped": sum(r["stopped"] for r in rows),
        "length_within_tolerance": sum(r["length_ok"] for r in rows),
        "tolerance": tolerance,
        "mean_dtw_mse_model_vs_espeak": model_err,
        "mean_dtw_mse_espeak_vs_other_sentence": base_err,
        "error_ratio": model_err / base_err,
    }
    all_stop = summary["stopped"] == len(rows)
    all_lengths = summary["length_within_tolerance"] == len(rows)
    summary["pass"] = bool(all_stop and all_lengths and model_err <= 0.5 * base_err)
    return {"summary": summary, "sentences": rows}
