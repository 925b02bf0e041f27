"""How diagonal is the *true* alignment of a corpus? The ceiling of `val/align_diag` for a faithful model.

    python benchmarks/alignment_ceiling.py [--config configs/demo.yaml] [--split val|train|all] [--json OUT]

Band diagonality scores attention mass within +-b tokens of the straight line from the first token at the
first decoder step to the last token at the last step. Real speech (eSpeak's included) does not move through
the characters at a constant rate: stressed syllables, final lengthening and pauses after commas bend the
true alignment away from that line. This script re-synthesizes each utterance of the demo corpus with eSpeak
NG, takes eSpeak's own word-start events, builds the reference alignment (a hard one-hot path, see
`taco_jax.data.reference_alignment`) and scores it with the same `diagnostics.band_diagonality` and decoder
step grid (hop x r) as training. A model whose attention followed the true alignment exactly and sharply
would score this; a soft attention scores less unless it is pulled towards the straight line.

Works for the Russian demo too (`--config configs/demo_ru.yaml`): its cleaned text may carry "+" stress marks,
which are token ids for the model but which eSpeak never reads (the corpus speaks the text without them), so
eSpeak's word positions are mapped back through the removed "+" characters (see `to_token_positions`).
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def to_token_positions(words: list, cleaned: str, stress: str = "+") -> list:
    """eSpeak's word timings over `cleaned` with `stress` removed, re-indexed into `cleaned` itself.

    The token ids map 1:1 to the characters of `cleaned`; eSpeak read it without the stress marks. A word
    starts at its first character in `cleaned`, a stress mark written before it included ("+утро").

    >>> from taco_jax.demo import WordTiming
    >>> to_token_positions([WordTiming(0, 6, 0), WordTiming(8, 3, 900)], "прив+ет, м+ир")  # eSpeak read "привет, мир"
    [WordTiming(char_start=0, n_chars=7, sample=0), WordTiming(char_start=9, n_chars=4, sample=900)]
    >>> to_token_positions([WordTiming(0, 4, 0)], "+утро")
    [WordTiming(char_start=0, n_chars=5, sample=0)]
    """
    kept = [i for i, ch in enumerate(cleaned) if ch != stress]  # speakable index -> cleaned index
    kept.append(len(cleaned))  # a position just past the end stays past the end
    out = []
    for w in words:
        start = kept[min(w.char_start, len(kept) - 1)]
        end = kept[min(w.char_start + max(w.n_chars, 1), len(kept) - 1)]  # first character after the word
        while start > 0 and cleaned[start - 1] == stress:
            start -= 1
        out.append(w._replace(char_start=start, n_chars=end - start))
    return out


def to_phoneme_words(words: list, phonemes: str) -> list | None:
    """eSpeak's word timings (over the spoken graphemes) moved onto the words of the phoneme string the model
    reads: the k-th timed word starts at the k-th space-separated phoneme word. None when the counts differ
    (eSpeak joined or split words while phonemising): such an utterance has no reliable reference.

    >>> from taco_jax.demo import WordTiming
    >>> to_phoneme_words([WordTiming(0, 2, 0), WordTiming(3, 5, 800)], "mˈy bʲirʲˈɵm.")
    [WordTiming(char_start=0, n_chars=3, sample=0), WordTiming(char_start=4, n_chars=9, sample=800)]
    """
    starts = [i for i, ch in enumerate(phonemes) if ch != " " and (i == 0 or phonemes[i - 1] == " ")]
    if len(starts) != len(words):
        return None
    ends = [*(s - 1 for s in starts[1:]), len(phonemes)]
    return [w._replace(char_start=a, n_chars=b - a) for w, a, b in zip(words, starts, ends, strict=True)]


def measure(config: str, split: str, overrides: list[str]) -> dict:
    import jax.numpy as jnp

    from taco_jax import diagnostics
    from taco_jax.config import load_config
    from taco_jax.data import read_filelist
    from taco_jax.data.reference_alignment import one_hot_alignment, reference_path
    from taco_jax.demo import build_demo_corpus, speakable, synthesize_espeak_words
    from taco_jax.demo.corpus import spoken_text
    from taco_jax.text import clean_text, get_symbol_table, text_to_sequence

    cfg = load_config(config, overrides)
    if cfg.data.corpus != "demo":
        raise SystemExit(f"{config}: data.corpus must be 'demo' (eSpeak word timings are needed)")
    train_path, val_path = build_demo_corpus(cfg.data.demo, cfg.audio, progress=False)
    paths = {"val": [val_path], "train": [train_path], "all": [train_path, val_path]}[split]
    table = get_symbol_table(cfg.text.symbols)
    r, hop, band = cfg.model.n_frames_per_step, cfg.audio.hop_length, cfg.diagnostics.band_tokens
    rows, skipped = [], 0
    for path in paths:
        for utt in read_filelist(path):
            cleaned = clean_text(utt.text, cfg.text.cleaners)
            ids, dropped = text_to_sequence(utt.text, table, cfg.text.cleaners, add_eos=cfg.text.add_eos)
            if dropped or len(ids) != len(cleaned) + int(cfg.text.add_eos):
                raise SystemExit(f"{path}: {utt.text!r}: token ids do not map 1:1 to the cleaned characters")
            # The corpus speaks the grapheme transcript without stress marks (taco_jax.demo.corpus.spoken_text):
            # eSpeak's positions index that, and map to `ids` through the removed marks, or, for a phoneme front
            # end, word by word onto the phoneme string.
            spoken = spoken_text(utt.text, cfg.data.demo)
            audio, sr, words = synthesize_espeak_words(spoken, cfg.data.demo.voice, cfg.data.demo.words_per_minute)
            if speakable(cleaned) != spoken:
                words = to_phoneme_words(words, cleaned)
                if words is None:
                    skipped += 1
                    continue
            elif spoken != cleaned:
                words = to_token_positions(words, cleaned)
            if sr != cfg.audio.sampling_rate:
                raise SystemExit(f"eSpeak rate {sr} Hz != audio.sampling_rate {cfg.audio.sampling_rate}")
            n_frames = 1 + len(audio) // hop  # mel_spectrogram's frame count (centred frames)
            n_steps = -(-n_frames // r)
            steps_path = reference_path(words, len(ids), len(audio), n_steps, hop * r)
            # One padded shape for every utterance: one compiled metric, padding is masked out by the lengths.
            a = np.zeros((1, -(-n_steps // 256) * 256, -(-len(ids) // 128) * 128), np.float32)
            a[0, :n_steps, : len(ids)] = one_hot_alignment(steps_path, len(ids))
            a = jnp.asarray(a)
            diag = float(diagnostics.band_diagonality(a, jnp.asarray([len(ids)]), jnp.asarray([n_steps]), band=band))
            linear = np.rint(np.arange(n_steps) * len(ids) / n_steps).astype(int)
            rows.append(
                {
                    "text": utt.text,
                    "tokens": len(ids),
                    "steps": n_steps,
                    "diag": diag,
                    "max_offset_tokens": int(np.max(np.abs(steps_path - linear))),
                }
            )
    diags = np.array([row["diag"] for row in rows])
    return {
        "config": config,
        "split": split,
        "language": cfg.data.demo.language,
        "band_tokens": band,
        "n_frames_per_step": r,
        "utterances": len(rows),
        "skipped_word_count_mismatch": skipped,
        "mean_diag": float(diags.mean()),
        "median_diag": float(np.median(diags)),
        "fraction_diag_ge_0.95": float(np.mean(diags >= 0.95)),
        "p10_diag": float(np.percentile(diags, 10)),
        "mean_max_offset_tokens": float(np.mean([row["max_offset_tokens"] for row in rows])),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/demo.yaml")
    parser.add_argument("--split", choices=("val", "train", "all"), default="val")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the full result (per utterance) here")
    args = parser.parse_args(argv)
    result = measure(args.config, args.split, args.overrides)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    print(f"{result['utterances']} {args.split} utterances, band +-{result['band_tokens']} tokens, "
          f"r = {result['n_frames_per_step']}"
          + (f" ({result['skipped_word_count_mismatch']} skipped: eSpeak phonemised another number of words)"
             if result["skipped_word_count_mismatch"] else ""))  # fmt: skip
    print(
        f"reference (eSpeak word timing) band diagonality: mean {result['mean_diag']:.3f}, "
        f"median {result['median_diag']:.3f}, 10th percentile {result['p10_diag']:.3f}, "
        f"{100 * result['fraction_diag_ge_0.95']:.0f}% of utterances >= 0.95; "
        f"mean largest offset from the straight line {result['mean_max_offset_tokens']:.1f} tokens"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
