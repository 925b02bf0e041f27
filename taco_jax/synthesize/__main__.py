"""Command line of taco_jax.synthesize.

    python -m taco_jax.synthesize --checkpoint RUN_OR_CKPT (--text "..." | --text-file F) --out-dir D
        [--reference-wav W | --style-token K] [--style-scale S]     (models with GST)
        [--speaker K]                                               (multi-speaker models)
        [--max-tokens N] [--max-chars N] [--no-split]               (long inputs)
        [--vocoder G [--vocoder-config config.json] [--trust-pickle]]   (HiFi-GAN instead of Griffin-Lim)

Each input (a --text, or a line of --text-file) is cut into sentences, and a sentence longer than the model
takes (--max-tokens, default: the largest training bucket's text length; --max-chars, when given) at commas,
then between words; the pieces are synthesized in batches and joined with pauses (0.25 s after a sentence,
0.1 s inside one). Writes per input NNN.wav (Griffin-Lim, or the HiFi-GAN generator given by --vocoder: a
published PyTorch generator file with its config.json, a directory written by the converter, or a vocoder
training run; its real-time factor is printed), NNN.png (alignment), NNN.npy (log-mel
[frames, n_mels]) and report.json (a list, in input order, of {text, frames, seconds, stopped, wav, mel,
pieces: [{text, tokens, frames, stopped, split}]}), and prints one line per input saying how it was split. A
line with nothing to speak (empty, or every character dropped) is an error (exit status 2) reported before
anything is synthesized or written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from taco_jax.errors import report_error
from taco_jax.logging_setup import setup_logging
from taco_jax.synthesize import Synthesis, TextInputError, load_synthesizer, write_outputs
from taco_jax.synthesize.split import describe

DESCRIPTION = "Text -> mel -> wav: the synthesis API and CLI."
SHOWN_CHARS = 60  # the printed line shows this much of each input


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line on `argv` (default: sys.argv[1:]); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m taco_jax.synthesize", description=DESCRIPTION)
    parser.add_argument("--checkpoint", required=True, help="run directory, checkpoints directory or step directory")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", action="append", help="a sentence to synthesize (repeatable)")
    group.add_argument("--text-file", help="a UTF-8 file with one sentence per line")
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    style = parser.add_mutually_exclusive_group()
    style.add_argument("--reference-wav", help="GST models: speak in the style of this recording")
    style.add_argument("--style-token", type=int, help="GST models: speak in the style of this token alone")
    parser.add_argument("--style-scale", type=float, default=1.0, help="GST models: style strength")
    parser.add_argument("--speaker", type=int, help="multi-speaker models: the speaker id")
    parser.add_argument(
        "--max-tokens", type=_positive, help="longest piece in encoded tokens (default: the largest training bucket's)"
    )
    parser.add_argument("--max-chars", type=_positive, help="longest piece in characters (default: no limit)")
    parser.add_argument("--no-split", action="store_true", help="synthesize each input whole, however long")
    parser.add_argument(
        "--vocoder", help="HiFi-GAN generator: a published g_ file, a converted directory or a vocoder run "
        "(default: Griffin-Lim)"
    )  # fmt: skip
    parser.add_argument("--vocoder-config", help="config.json of a published generator (default: the one beside it)")
    parser.add_argument(
        "--trust-pickle", action="store_true", help="let a vocoder file that is not plain tensors unpickle objects"
    )
    args = parser.parse_args(argv)
    setup_logging()
    try:
        return _synthesize(args)
    except BaseException as e:  # noqa: BLE001 — the one place errors become a line on stderr and a status
        return report_error(e, stage="synthesis")


def _positive(value: str) -> int:
    """argparse type of the piece limits: an integer >= 1."""
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value!r}")
    return n


def _read_text_file(path: str) -> tuple[list[str], list[str]]:
    """(texts, labels) of the non-empty lines of a UTF-8 file (a byte-order mark and CRLF endings are fine)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            numbered = [(n, line.strip()) for n, line in enumerate(f, 1) if line.strip()]
    except UnicodeDecodeError as e:
        raise TextInputError(f"{path}: not UTF-8 text (byte {e.start}: {e.reason})") from None
    if not numbered:
        raise TextInputError(f"{path}: no non-empty lines")
    return [text for _, text in numbered], [f"line {n}" for n, _ in numbered]  # the file's own line numbers


def _synthesize(args: argparse.Namespace) -> int:
    if args.text_file:
        texts, labels = _read_text_file(args.text_file)
    else:
        texts = args.text
        labels = [f"--text {i + 1}" for i in range(len(texts))]
    synth = load_synthesizer(
        args.checkpoint, args.set, args.seed, args.reference_wav, args.style_token, args.style_scale, args.speaker,
        args.max_tokens, args.max_chars, args.vocoder, args.vocoder_config, args.trust_pickle, args.batch_size,
    )  # fmt: skip
    # Every text is validated before any is synthesized, so a bad one leaves no output files.
    results = synth(texts, batch_size=args.batch_size, labels=labels, split=not args.no_split)
    report = write_outputs(synth, results, args.out_dir)
    for item, res in zip(report, results, strict=True):
        print(summary_line(item, res))
    if synth.vocoder is not None:
        print(f"vocoder: HiFi-GAN, {synth.vocoder.timing.summary()}")
    return 0


def summary_line(item: dict, res: Synthesis) -> str:
    """One short line for an input: "000.wav: 9.87 s, stopped, 3 sentences, 1 split at commas: Text...".

    `item` is its report.json entry; the line says "stopped" only when every piece stopped.
    """
    cut = sum(not p.stopped for p in res.pieces)
    if not cut:
        status = "stopped"
    elif len(res.pieces) == 1:
        status = "hit max_decoder_steps"
    else:
        status = f"{cut} of {len(res.pieces)} pieces hit max_decoder_steps"
    text = item["text"] if len(item["text"]) <= SHOWN_CHARS else item["text"][: SHOWN_CHARS - 3] + "..."
    return f"{item['wav']}: {item['seconds']:.2f} s, {status}, {describe(res.pieces)}: {text}"


if __name__ == "__main__":
    sys.exit(main())
